/* SPDX-License-Identifier: MIT */
/* weft/weft.h: every public header of libweft. */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <weft/common.h>
#include <weft/version.h>
#include <weft/error.h>
#include <weft/log.h>
#include <weft/loop.h>
#include <weft/protocol.h>
#include <weft/transport.h>
#include <weft/server.h>
#include <weft/resolver.h>
#include <weft/datagram.h>
#include <weft/plugin.h>
#include <weft/future.h>
#include <weft/task.h>
#include <weft/sync.h>
#include <weft/stream.h>
#include <weft/tls.h>
#include <weft/proxy.h>
#include <weft/pipe.h>
#include <weft/subprocess.h>

#endif
