# SPDX-License-Identifier: MIT
# bench/stream*: the stream-layer echo server for bench/stream.sh (asyncio/uvloop peers in
# bench/stream_echo.py).
add_executable(stream_echo ${CMAKE_CURRENT_SOURCE_DIR}/stream_echo.c)
target_compile_definitions(stream_echo PRIVATE _GNU_SOURCE)
target_link_libraries(stream_echo PRIVATE weft PkgConfig::LIBEVENT)
