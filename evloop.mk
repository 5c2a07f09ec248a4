# evloop.mk — the make fragment for projects that vendor evloop's source tree.
#
# It only names things; it defines no rules, so it cannot clash with yours.
# The top-level Makefile includes it too, so both builds use one source list.
#
#   include third_party/evloop/evloop.mk      # sets EVLOOP_DIR to that folder
#   CXXFLAGS += $(EVLOOP_CXXFLAGS)             # -std=c++20 -I<evloop> -pthread
#   myapp: main.o $(EVLOOP_SOURCES:.cpp=.o)
#   	$(CXX) $(CXXFLAGS) -o $@ $^ $(EVLOOP_LDFLAGS)
#
# Include it before any other makefile (EVLOOP_DIR is taken from the path make
# read it by), or set EVLOOP_DIR yourself. Add -DEVLOOP_FORCE_POLL to your
# CXXFLAGS to use the portable poll backend everywhere, and -fno-exceptions
# -fno-rtti if your firmware builds without them: the library supports both.
# Paths with spaces are not supported (make's lists split on spaces).

# The folder this file sits in, without a trailing slash ("." at the top level).
ifeq ($(origin EVLOOP_DIR),undefined)
EVLOOP_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
endif

# The library: every .cpp in the four layer folders. wildcard tolerates a
# folder that is empty or absent (git does not keep empty folders).
EVLOOP_SOURCES := $(sort $(wildcard $(foreach layer,core platform net proc,$(EVLOOP_DIR)/$(layer)/*.cpp)))

# Includes are written relative to the tree's root: "core/event_loop.hpp".
EVLOOP_CXXFLAGS := -std=c++20 -I$(EVLOOP_DIR) -pthread
EVLOOP_LDFLAGS := -pthread
