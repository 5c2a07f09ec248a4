# Makefile — the plain-make build of evloop (GNU make): the library, the demo,
# the tests, the core benchmark and install. The library and the demo need
# only make and a C++20 compiler; the tests add doctest (Debian: doctest-dev),
# which `make check` installs when it runs as root.
#
#   make                        build/<config>/libevloop.a
#   make demo                   build and run docs/examples/demo.cpp
#   make check                  build every test, run each once per backend
#   make check CXX=clang++-14 SANITIZE=address,undefined
#   make install PREFIX=/usr/local [DESTDIR=/tmp/stage]
#   make tests | examples | check-examples | clean
#   make bench                  the side-by-side suite against the peers
#   make bench-core | bench-tasks | bench-echo | bench-udp | bench-sendfile | bench-subprocess
#
# Configuration (each combination builds into its own build/<config>, so
# several coexist): CXX (g++), SANITIZE (address,undefined | thread),
# NO_EXCEPTIONS=1, FORCE_POLL=1, WERROR (1), OPT (-O2 -g); CPPFLAGS, CXXFLAGS
# and LDFLAGS are appended as usual. Read next: evloop.mk (the source list
# vendoring users share), tools/check (the test runner), meson.build.

# First, so that evloop.mk finds its own folder from MAKEFILE_LIST.
include evloop.mk

SANITIZE ?=
NO_EXCEPTIONS ?=
FORCE_POLL ?=
WERROR ?= 1
OPT ?= -O2 -g
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

# The version has one home, project() in meson.build; the .pc file needs it.
VERSION := $(shell sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" meson.build | head -n 1)

# ---- the configuration and its build folder -------------------------------
# e.g. g++, g++-12-noexc, clang++-14-asan-ubsan, clang++-14-tsan, g++-poll
comma := ,
san_tag := $(subst address,asan,$(subst undefined,ubsan,$(subst thread,tsan,$(subst $(comma),-,$(SANITIZE)))))
CONFIG := $(notdir $(lastword $(CXX)))$(if $(SANITIZE),-$(san_tag))$(if $(filter 1,$(NO_EXCEPTIONS)),-noexc)$(if $(filter 1,$(FORCE_POLL)),-poll)
BUILD := build/$(CONFIG)

ALL_CXXFLAGS := $(EVLOOP_CXXFLAGS) -Wall -Wextra -Wpedantic $(if $(filter 1,$(WERROR)),-Werror) $(OPT)
ALL_CXXFLAGS += $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer -g)
# clang 14's -fsanitize=function (part of "undefined") breaks the split
# coroutine frames ("Cannot represent a difference across sections"); it
# checks calls through function pointers of the wrong type, which C++ code
# without casts of function pointers does not make.
ALL_CXXFLAGS += $(if $(and $(findstring clang,$(CXX)),$(findstring undefined,$(SANITIZE))),-fno-sanitize=function)
# g++'s -Wmaybe-uninitialized guesses wrong at -O1 and under the sanitizers'
# instrumentation (it flags std::optional<Future> and std::optional<shared_ptr>
# members, in coroutine frames and tests); the default g++ build (-O2, no
# sanitizer) keeps the warning, so a real case still fails there.
gcc_guesses := $(and $(if $(findstring clang,$(CXX)),,$(findstring g++,$(CXX))),$(or $(SANITIZE),$(filter-out -O2,$(filter -O%,$(OPT)))))
ALL_CXXFLAGS += $(if $(gcc_guesses),-Wno-maybe-uninitialized)
ALL_CXXFLAGS += $(if $(filter 1,$(NO_EXCEPTIONS)),-fno-exceptions -fno-rtti)
ALL_CXXFLAGS += $(if $(filter 1,$(FORCE_POLL)),-DEVLOOP_FORCE_POLL)
ALL_CXXFLAGS += $(CPPFLAGS) $(CXXFLAGS)
# -fsanitize must reach the link too: ALL_CXXFLAGS goes on every link line.
ALL_LDFLAGS := $(LDFLAGS) $(LDLIBS) $(EVLOOP_LDFLAGS)

# ---- what gets built --------------------------------------------------------
LIB_SOURCES := $(patsubst ./%,%,$(EVLOOP_SOURCES))
LIB_OBJS := $(LIB_SOURCES:%.cpp=$(BUILD)/%.o)
LIB := $(BUILD)/libevloop.a

# Every test/**/*_test.cpp is a binary of its own, linked with test_main.cpp.
TEST_SOURCES := $(shell find test -name '*_test.cpp' 2>/dev/null | LC_ALL=C sort)
TEST_BINS := $(TEST_SOURCES:%.cpp=$(BUILD)/%)
TEST_MAIN := $(BUILD)/test/test_main.o

EXAMPLES := $(patsubst docs/examples/%.cpp,$(BUILD)/examples/%,$(wildcard docs/examples/*.cpp))
BENCH_CORE := $(BUILD)/bench/core_bench
BENCH_TASKS := $(BUILD)/bench/task_bench
BENCH_ECHO := $(BUILD)/bench/echo_bench
ECHO_CLIENT := $(BUILD)/bench/echo_client
BENCH_UDP := $(BUILD)/bench/udp_bench
BENCH_SENDFILE := $(BUILD)/bench/sendfile_bench
BENCH_SUBPROCESS := $(BUILD)/bench/subprocess_bench

HEADERS := evloop.hpp $(sort $(wildcard $(foreach layer,core platform net proc,$(layer)/*.hpp)))

.PHONY: all lib examples demo tests check bench-core install clean FORCE
.SUFFIXES:
.DELETE_ON_ERROR:

all: lib
lib: $(LIB)
examples: $(EXAMPLES)
tests: $(TEST_BINS)

# Runs from the repo root, as the tests and examples expect.
demo: $(BUILD)/examples/demo
	$(BUILD)/examples/demo

bench-core: $(BENCH_CORE)
	$(BENCH_CORE)

# Interleaves evloop, asyncio and uvloop (test/bench/task_bench.py says why).
# uvloop comes from Debian's python3-uvloop, which serves /usr/bin/python3
# only (a python3 earlier in PATH, e.g. pyenv's, would not see it): installed
# here when missing and we are root on Debian/Ubuntu; otherwise task_bench.py
# says what to install and compares with asyncio alone.
.PHONY: bench-tasks
bench-tasks: $(BENCH_TASKS)
	@py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3; \
	if ! $$py -c 'import uvloop' 2>/dev/null && [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && \
	    command -v apt-get >/dev/null; then \
	    echo 'bench-tasks: installing python3-uvloop'; \
	    apt-get update -qq && apt-get install -y -qq python3-uvloop >/dev/null; \
	    [ -x /usr/bin/python3 ] && py=/usr/bin/python3; \
	fi; \
	echo "$$py test/bench/task_bench.py --compare $(BENCH_TASKS) --rounds 3 --repeat 3"; \
	$$py test/bench/task_bench.py --compare $(BENCH_TASKS) --rounds 3 --repeat 3

# Forks the echo servers (Protocol, BufferedProtocol, plain epoll) and drives
# each with echo_client, pinned to two CPUs; about a minute. Quiet machine only.
.PHONY: bench-echo
bench-echo: $(BENCH_ECHO) $(ECHO_CLIENT)
	$(BENCH_ECHO) --client $(ECHO_CLIENT)

# Forks the UDP echo servers (evloop, plain recvfrom/sendto) pinned to CPU 0
# and drives each from a plain-socket client on CPU 1 keeping 32 datagrams in
# flight; 64- and 1,400-byte datagrams, about 25 s. Quiet machine only.
.PHONY: bench-udp
bench-udp: $(BENCH_UDP)
	$(BENCH_UDP)

# sock_sendfile of a 1 GiB file (smaller if /tmp lacks room) over loopback:
# native sendfile(2) against the read+send fallback, receiver a forked child
# on another CPU; MiB/s and sender CPU per GiB. Quiet machine only.
.PHONY: bench-sendfile
bench-sendfile: $(BENCH_SENDFILE)
	$(BENCH_SENDFILE)

# The side-by-side suite (issue 7): echo servers on evloop, bare epoll,
# libuv, libev, libevent, Asio, asyncio and uvloop driven by echo_client,
# interleaved, with syscall counts, idle memory per connection and the
# micro table; test/bench/bench_suite.py installs the peers' Debian packages
# when root. Writes build/bench/results.json and the SVG charts beside it.
.PHONY: bench
bench: $(LIB) $(ECHO_CLIENT) $(BENCH_CORE) $(BENCH_TASKS)
	@py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3; \
	echo "$$py test/bench/bench_suite.py --build $(BUILD)"; \
	$$py test/bench/bench_suite.py --build $(BUILD) && $$py test/bench/chart.py build/bench/results.json

# Spawn+exit round trips of /bin/true per second on evloop, asyncio and
# uvloop, interleaved (test/bench/subprocess_bench.py); python3-uvloop is
# installed as for bench-tasks. About a minute. Quiet machine only.
.PHONY: bench-subprocess
bench-subprocess: $(BENCH_SUBPROCESS)
	@py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3; \
	if ! $$py -c 'import uvloop' 2>/dev/null && [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && \
	    command -v apt-get >/dev/null; then \
	    echo 'bench-subprocess: installing python3-uvloop'; \
	    apt-get update -qq && apt-get install -y -qq python3-uvloop >/dev/null; \
	fi; \
	echo "$$py test/bench/subprocess_bench.py --compare $(BENCH_SUBPROCESS)"; \
	$$py test/bench/subprocess_bench.py --compare $(BENCH_SUBPROCESS)

# Every example with --selftest (each serves, connects to itself, checks and
# exits 0 within two seconds), then the demo as `make demo` runs it.
.PHONY: check-examples
check-examples: $(EXAMPLES)
	@set -e; for example in $(filter-out $(BUILD)/examples/demo,$(EXAMPLES)); do \
	    echo "$$example --selftest"; timeout 30 $$example --selftest; \
	done; echo "$(BUILD)/examples/demo"; timeout 30 $(BUILD)/examples/demo >/dev/null

# tools/check runs make itself (with -j$(nproc)); it gets the configuration
# through the environment so it can also be run by hand.
check:
	CXX='$(CXX)' SANITIZE='$(SANITIZE)' NO_EXCEPTIONS='$(NO_EXCEPTIONS)' \
	FORCE_POLL='$(FORCE_POLL)' OPT='$(OPT)' WERROR='$(WERROR)' \
	EVLOOP_TEST_ARGS='$(EVLOOP_TEST_ARGS)' EVLOOP_TESTS='$(EVLOOP_TESTS)' bash tools/check

# ---- rules --------------------------------------------------------------------
# Rebuilt from scratch so a deleted source leaves no stale member behind.
$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# Objects depend on $(BUILD)/flags, whose content is the compile and link
# line: it is rewritten only when that changes (FORCE runs the check each
# time), so `make OPT=-O0` rebuilds instead of mixing old and new objects.
$(BUILD)/flags: FORCE
	@mkdir -p $(@D)
	@echo '$(CXX) $(ALL_CXXFLAGS) $(ALL_LDFLAGS)' | cmp -s - $@ || echo '$(CXX) $(ALL_CXXFLAGS) $(ALL_LDFLAGS)' > $@

# -MMD -MP: each object gets a .d file listing its headers (read below).
$(BUILD)/%.o: %.cpp $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -MMD -MP -c $< -o $@

# Tests the same way, plus: doctest drops REQUIRE in -fno-exceptions builds
# unless told to keep it; kept, a failing REQUIRE ends the binary, which
# tools/check counts as a failure. (Make picks this rule, the shorter stem.)
TEST_CXXFLAGS := $(if $(filter 1,$(NO_EXCEPTIONS)),-DDOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS)
$(BUILD)/test/%.o: test/%.cpp $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) $(TEST_CXXFLAGS) -MMD -MP -c $< -o $@

# Static pattern rules, so these patterns cannot capture other targets.
$(TEST_BINS): $(BUILD)/%: $(BUILD)/%.o $(TEST_MAIN) $(LIB) $(BUILD)/flags
	$(CXX) $(ALL_CXXFLAGS) -o $@ $(filter-out $(BUILD)/flags,$^) $(ALL_LDFLAGS)

$(EXAMPLES): $(BUILD)/examples/%: $(BUILD)/docs/examples/%.o $(LIB) $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -o $@ $(filter-out $(BUILD)/flags,$^) $(ALL_LDFLAGS)

# Benchmarks are measured optimised whatever OPT says (the last -O wins).
$(BENCH_CORE): test/bench/core_bench.cpp $(LIB) $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -O2 -MMD -MP -o $@ $< $(LIB) $(ALL_LDFLAGS)

$(BENCH_TASKS): test/bench/task_bench.cpp $(LIB) $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -O2 -MMD -MP -o $@ $< $(LIB) $(ALL_LDFLAGS)

-include $(patsubst %.o,%.d,$(LIB_OBJS) $(TEST_MAIN) $(TEST_BINS:%=%.o)) $(EXAMPLES:$(BUILD)/examples/%=$(BUILD)/docs/examples/%.d) $(BENCH_CORE).d
$(BENCH_ECHO): test/bench/echo_bench.cpp $(LIB) $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -O2 -MMD -MP -o $@ $< $(LIB) $(ALL_LDFLAGS)

# The load generator is plain epoll: no evloop, so the library never measures itself.
$(ECHO_CLIENT): test/bench/echo_client.cpp $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -O2 -MMD -MP -o $@ $< $(ALL_LDFLAGS)

$(BENCH_UDP): test/bench/udp_bench.cpp $(LIB) $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -O2 -MMD -MP -o $@ $< $(LIB) $(ALL_LDFLAGS)

$(BENCH_SENDFILE): test/bench/sendfile_bench.cpp $(LIB) $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -O2 -MMD -MP -o $@ $< $(LIB) $(ALL_LDFLAGS)

$(BENCH_SUBPROCESS): test/bench/subprocess_bench.cpp $(LIB) $(BUILD)/flags
	@mkdir -p $(@D)
	$(CXX) $(ALL_CXXFLAGS) -O2 -MMD -MP -o $@ $< $(LIB) $(ALL_LDFLAGS)

-include $(BENCH_TASKS).d $(BENCH_ECHO).d $(ECHO_CLIENT).d $(BENCH_UDP).d $(BENCH_SENDFILE).d $(BENCH_SUBPROCESS).d

# ---- install ------------------------------------------------------------------
# Headers keep their folders under include/evloop/, so the installed tree
# reads like the source tree: #include "core/event_loop.hpp" with
# -I$(INCLUDEDIR)/evloop (what evloop.pc says). DESTDIR is for packagers.
install: $(LIB)
	sed -e '/^#/d' -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    evloop.pc.in > $(BUILD)/evloop.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libevloop.a
	install -m 644 $(BUILD)/evloop.pc $(DESTDIR)$(LIBDIR)/pkgconfig/evloop.pc
	for header in $(HEADERS); do \
	    install -D -m 644 $$header $(DESTDIR)$(INCLUDEDIR)/evloop/$$header || exit 1; \
	done

clean:
	rm -rf build

FORCE:

# `make -s print-BUILD` prints a variable; tools/check asks for BUILD and TEST_BINS.
print-%:
	@echo '$($*)'
