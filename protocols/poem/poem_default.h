/* SPDX-License-Identifier: MIT */
/* poem_default.h: the built-in poem, the one the tutorials' stream server recites. */
#ifndef WEFT_POEM_DEFAULT_H
#define WEFT_POEM_DEFAULT_H

/*
 * Nalan Xingde, 木兰花·拟古决绝词柬友. The tutorials' client sends the first
 * two lines as its greeting; their server answers with the last two
 * (骊山语罢清宵半…), in the tutorials' wording (泪雨霖铃).
 */
static const char poem_default[] =
    "木兰花·拟古决绝词柬友\n"
    "纳兰性德\n"
    "\n"
    "人生若只如初见，何事秋风悲画扇。\n"
    "等闲变却故人心，却道故人心易变。\n"
    "骊山语罢清宵半，泪雨霖铃终不怨。\n"
    "何如薄幸锦衣郎，比翼连枝当日愿。\n";

#endif
