# SPDX-License-Identifier: MIT
# Thin wrapper over CMake: the README's two commands, and the benchmarks.
#   make run    install missing packages, build, run weftd on conf/weftd.conf
#   make test   install missing packages, build, run the suite (plain, then ASan+UBSan, then
#               the valgrind runs: integration tests' weftd and unit tests under memcheck)
#   make fuzz   build, run each libFuzzer target for FUZZ_SECONDS (60) with clang
#   make bench  install missing packages, build (Release), run bench/
#   make deb    the Debian packages weftd, libweft0, libweft-dev in $(DEB_DIR) (build/deb)
#   make install  build, then cmake --install into $(PREFIX) (/usr/local; DESTDIR honoured)
#   make scale  19,000 idle connections per worker, 100,000 connect-echo-close cycles
#   make soak   10 minutes of mixed echo, HTTP, poem, TLS traffic (SOAK_SECONDS=60: 1 minute)
#   make chaos  kill -9 workers and SIGHUP the master under load (CHAOS_SECONDS, 60)
#   (scale, soak, chaos: docs/reliability-load.md; not part of make test)

BUILD      ?= build
BUILD_SAN  ?= build-san
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# Tests at once in the plain and sanitizer phases: twice the cores, since most tests spend
# much of their time waiting (on daemons, clients, apt and dpkg in the system tests) rather
# than computing. The valgrind phase, CPU-bound, runs JOBS at once.
TEST_JOBS  ?= $(shell echo $$(( $(JOBS) * 2 )))
FUZZ_SECONDS ?= 60
CMAKE_ARGS ?=
PREFIX     ?= /usr/local

.PHONY: all setup setup-test setup-bench build build-run build-tests build-san run test test-plain deb test-san test-valgrind \
        fuzz bench clean install

all: build

setup:
	@sh scripts/setup.sh build
setup-test:
	@sh scripts/setup.sh test
setup-bench:
	@sh scripts/setup.sh bench

# Configure quietly: the output goes to $(BUILD)/configure.log, shown if cmake fails.
$(BUILD)/CMakeCache.txt:
	@mkdir -p $(BUILD)
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) \
	    >$(BUILD)/configure.log 2>&1 || { cat $(BUILD)/configure.log; exit 1; }

$(BUILD_SAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON -DWEFT_TESTS=ON $(CMAKE_ARGS)

build: setup $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# What `make run` runs, and nothing else: weftd and the plugins, the output in
# $(BUILD)/build.log (shown if the build fails).
build-run: setup $(BUILD)/CMakeCache.txt
	@echo "weft: building weftd and its plugins in $(BUILD)/ (log: $(BUILD)/build.log)"
	@cmake --build $(BUILD) -j $(JOBS) --target weftd plugins >$(BUILD)/build.log 2>&1 || \
	    { tail -n 60 $(BUILD)/build.log; echo "weft: the build failed (all of it: $(BUILD)/build.log)"; exit 1; }

# The suite needs the tests configured in: WEFT_TESTS=ON (cmake fails if cmocka is missing).
build-tests: setup-test $(BUILD)/CMakeCache.txt
	@cmake -S . -B $(BUILD) -DWEFT_TESTS=ON >$(BUILD)/configure.log 2>&1 || \
	    { cat $(BUILD)/configure.log; exit 1; }
	cmake --build $(BUILD) -j $(JOBS)

build-san: setup-test $(BUILD_SAN)/CMakeCache.txt
	cmake --build $(BUILD_SAN) -j $(JOBS)

# run.sh does the same and exits with weftd's status (make reports 130 after a Ctrl-C).
run: build-run
	$(BUILD)/daemon/weftd -c conf/weftd.conf

test: setup-test
	$(MAKE) --no-print-directory test-plain
	$(MAKE) --no-print-directory test-san
	$(MAKE) --no-print-directory test-valgrind

test-plain: build-tests
	cd $(BUILD) && ctest --output-on-failure --no-tests=error -j $(TEST_JOBS) -LE valgrind

# valgrind memcheck (tests/valgrind.sh, tests/valgrind.supp): the plain build's tests
# labelled valgrind.
test-valgrind: build-tests
	cd $(BUILD) && ctest --output-on-failure --no-tests=error -j $(JOBS) -L valgrind

# Each libFuzzer target for FUZZ_SECONDS (tests/fuzz/fuzzrun.sh; crashes stay in
# $(BUILD)/tests/fuzz/fuzzrun/crash-*).
fuzz: build-tests
	cd $(BUILD) && WEFT_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -j $(JOBS) -R '^fuzzrun_' \
	    --timeout $$(($(FUZZ_SECONDS) + 300))

test-san: build-san
	cd $(BUILD_SAN) && ctest --output-on-failure --no-tests=error -j $(TEST_JOBS) -LE nosan

bench: setup-bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DWEFT_BENCH=ON
	cmake --build build-bench -j $(JOBS)
	sh bench/run.sh build-bench

# Everything under $(PREFIX), relocatable (README's Install): cmake --install's --prefix, so
# the build's configured CMAKE_INSTALL_PREFIX does not matter.
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# The Debian packages, from the checkout: the .debs in $(DEB_DIR) (docs/packaging.md).
DEB_DIR ?= $(BUILD)/deb
deb:
	@sh scripts/deb.sh $(DEB_DIR)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) build-bench

# Load, scale, soak and chaos (bench/scale.sh, soak.sh, chaos.sh), on their own Release build.
.PHONY: build-load scale soak chaos
BUILD_LOAD ?= build-load

build-load: setup-bench
	cmake -S . -B $(BUILD_LOAD) -DCMAKE_BUILD_TYPE=Release -DWEFT_BENCH=ON
	cmake --build $(BUILD_LOAD) -j $(JOBS)

scale: build-load
	sh bench/scale.sh $(BUILD_LOAD)

soak: build-load
	sh bench/soak.sh $(BUILD_LOAD)

chaos: build-load
	sh bench/chaos.sh $(BUILD_LOAD)
