# SPDX-License-Identifier: MIT
# bench/coro/: coroutine benchmarks (switch, pooled task, idle RSS); bench/coro.sh runs them.
# They link the static library to reach the switch itself (lib/coro/coro.h).
file(GLOB _coro_benches CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/coro/*.c)
foreach(src IN LISTS _coro_benches)
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/lib)
    target_link_libraries(${name} PRIVATE weft_static)
endforeach()
