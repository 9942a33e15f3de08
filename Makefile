# SPDX-License-Identifier: MIT
# Thin wrapper over CMake: the README's two commands, and the benchmarks.
#   make run    install missing packages, build, run weftd on conf/weftd.conf
#   make test   install missing packages, build, run the suite (plain, then ASan+UBSan)
#   make bench  install missing packages, build (Release), run bench/

BUILD      ?= build
BUILD_SAN  ?= build-san
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all setup setup-test setup-bench build build-san run test test-plain test-san bench clean

all: build

setup:
	@sh scripts/setup.sh build
setup-test:
	@sh scripts/setup.sh test
setup-bench:
	@sh scripts/setup.sh bench

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

$(BUILD_SAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON $(CMAKE_ARGS)

build: setup $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-san: setup-test $(BUILD_SAN)/CMakeCache.txt
	cmake --build $(BUILD_SAN) -j $(JOBS)

run: build
	$(BUILD)/daemon/weftd -c conf/weftd.conf

test: setup-test
	$(MAKE) --no-print-directory test-plain
	$(MAKE) --no-print-directory test-san

test-plain: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-san: build-san
	cd $(BUILD_SAN) && ctest --output-on-failure -j $(JOBS) -LE nosan

bench: setup-bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DWEFT_BENCH=ON
	cmake --build build-bench -j $(JOBS)
	sh bench/run.sh build-bench

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-bench
