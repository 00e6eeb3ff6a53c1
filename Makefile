# Build: `make` (release into bin/; one line per file, V=1 shows the commands),
# `make test` (sanitizer build + all tests),
# `make format-check` (clang-format, as CI runs it),
# `make demo`, `make bench`, `make tlsscan`, `make install PREFIX=/usr/local DESTDIR=`,
# `make deb` (build/deb/connector_*.deb and edge-sim_*.deb).
PREFIX ?= /usr/local
DESTDIR ?=
PKGS := libnghttp2 libcurl jansson libuv sqlite3 libpq

# wolfSSL: WOLFSSL=source (the default) links a static libwolfssl with
# AES-NI, AVX and SP-math assembly (AES-128-GCM ~4 GB/s instead of ~0.1),
# built once from Debian's own source package by scripts/wolfssl-src.sh into
# WOLFSSL_DIR (about 80-130 s once; shared by the release and the test build,
# kept by `make clean`; point it outside the tree to share it between trees),
# compiled against that build's own headers and options.h only.
# WOLFSSL=system links Debian's shared libwolfssl (its headers, via
# pkg-config): the fallback where the source build cannot be made (no root
# once, no Debian mirror). The source build never falls back by itself: it
# fails naming WOLFSSL=system, since a silent fallback would hide TLS several
# times slower. Never one build's headers with the other's library.
WOLFSSL ?= source
WOLFSSL_DIR ?= build/wolfssl
ifeq ($(WOLFSSL),source)
WOLFSSL_LIB := $(WOLFSSL_DIR)/lib/libwolfssl.a
WOLFSSL_CFLAGS := -I$(WOLFSSL_DIR)/include
# Its OpenSSL-compatible names (SSL_SESSION_set1_id, ...) stay inside the
# program: exported, they would take the place of libssl's own for libcurl.
WOLFSSL_LDFLAGS := -Wl,--exclude-libs,libwolfssl.a
else ifeq ($(WOLFSSL),system)
PKGS += wolfssl
WOLFSSL_LIB :=
WOLFSSL_CFLAGS :=
WOLFSSL_LDFLAGS :=
else
$(error WOLFSSL=$(WOLFSSL): say WOLFSSL=source (the default) or WOLFSSL=system)
endif

ifeq ($(SAN),1)
BUILD := build/test
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else
BUILD := build/release
SANFLAGS :=
OPT := -O2 -g
endif
BINDIR := $(BUILD)/bin

CC ?= cc

# One short line per file (`  CC      proto/px_b64.c`) unless V=1.
V ?= 0
ifeq ($(V),1)
Q :=
say = @:
else
Q := @
say = @printf '  %-7s %s\n' '$(1)' '$(2)'
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# No -lcurl: the connector loads libcurl on first use (connector/cn_curl.h),
# and the edge never uses it.
PKG_LIBS = $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null) -lhttp_parser
# The connector needs no PostgreSQL: only the edge (es_sql) links libpq.
CN_PKG_LIBS = $(shell pkg-config --libs $(filter-out libcurl libpq,$(PKGS)) 2>/dev/null) -lhttp_parser
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla
CFLAGS ?= $(OPT)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Iproto -Irt -Iconnector \
             -Iedge-sim $(WOLFSSL_CFLAGS) $(PKG_CFLAGS) -MMD -MP
LDFLAGS_ALL = $(SANFLAGS) $(WOLFSSL_LDFLAGS) $(LDFLAGS)

PROTO_SRC := $(wildcard proto/*.c)
RT_SRC := $(wildcard rt/*.c)
CN_SRC := $(filter-out connector/cn_main.c,$(wildcard connector/*.c))
ES_SRC := $(filter-out edge-sim/es_main.c,$(wildcard edge-sim/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
PROTO_OBJ := $(call obj,$(PROTO_SRC))
RT_OBJ := $(call obj,$(RT_SRC))
CN_OBJ := $(call obj,$(CN_SRC))
ES_OBJ := $(call obj,$(ES_SRC))

# Each layer is a static archive; a program or test links the archives of the
# layers it uses, and the linker takes only the objects it needs from them.
LIBDIR := $(BUILD)/lib
LIBPX := $(LIBDIR)/libpx.a
LIBRT := $(LIBDIR)/librt.a
LIBCN := $(LIBDIR)/libcn.a
LIBES := $(LIBDIR)/libes.a
LIBSUPPORT := $(LIBDIR)/libsupport.a

# Test-only helpers (in-memory edge/connector pair) for unit tests.
SUPPORT_OBJ := $(call obj,$(wildcard tests/support/*.c))
.SECONDARY: $(SUPPORT_OBJ)

UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BINDIR)/unit/%,$(UNIT_SRC))

.PHONY: test-resilience FORCE all build install test unit demo bench bench-store clean distclean deps deps-build format format-check \
	fuzz tlsscan deb
all: bin/connector bin/edge-sim

build: $(BINDIR)/connector $(BINDIR)/edge-sim

bin/connector: $(BINDIR)/connector
	@mkdir -p bin && cp $< $@
bin/edge-sim: $(BINDIR)/edge-sim
	@mkdir -p bin && cp $< $@

$(BINDIR)/connector: $(call obj,connector/cn_main.c) $(CN_OBJ) $(RT_OBJ) $(PROTO_OBJ) \
		$(WOLFSSL_LIB) $(BUILD)/wolfssl-used
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $(filter %.o %.a,$^) $(LDFLAGS_ALL) $(CN_PKG_LIBS) -lm
$(BINDIR)/edge-sim: $(call obj,edge-sim/es_main.c) $(ES_OBJ) $(RT_OBJ) $(PROTO_OBJ) \
		$(WOLFSSL_LIB) $(BUILD)/wolfssl-used
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) -o $@ $(filter %.o %.a,$^) $(LDFLAGS_ALL) $(PKG_LIBS) -lm

# Objects depend on the compiler flags too: a changed warning set rebuilds.
$(BUILD)/cflags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS)' > $@

# Before the first object: the libraries are there, or say which Debian
# packages are missing and how to install them (not a missing-header error).
# (Per WOLFSSL: only the system build needs libwolfssl-dev.)
$(BUILD)/deps-ok-$(WOLFSSL): scripts/check-build-deps.sh
	@WOLFSSL=$(WOLFSSL) bash scripts/check-build-deps.sh
	@mkdir -p $(BUILD) && touch $@

# With WOLFSSL=source the script builds the library first if its stamp
# (Debian source version, configure flags) does not match, else does
# nothing; objects wait for it (the headers come with it).
ifeq ($(WOLFSSL),source)
$(WOLFSSL_LIB): FORCE
	@bash scripts/wolfssl-src.sh $(WOLFSSL_DIR)
WOLFSSL_USED = source $$(cut -d' ' -f1 $(WOLFSSL_DIR)/stamp) (static $(WOLFSSL_LIB): AES-NI, AVX2, SP assembly)
else
WOLFSSL_USED = system $$(pkg-config --modversion wolfssl 2>/dev/null) (Debian's shared libwolfssl)
endif
# The scripts that build on their own (tests/fuzz/run.sh, the copies of the
# tree in tests/integration/test_build.sh) link the same wolfSSL.
WOLFSSL_ENV = WOLFSSL=$(WOLFSSL) WOLFSSL_DIR=$(abspath $(WOLFSSL_DIR))

# Says in one line which wolfSSL the programs link; a program relinks when
# that changed.
$(BUILD)/wolfssl-used: $(WOLFSSL_LIB) FORCE
	@mkdir -p $(BUILD)
	@echo "wolfssl: $(WOLFSSL_USED)" | tee $@.new && \
		{ cmp -s $@.new $@ && rm $@.new || mv $@.new $@; }

# The wolfSSL library is a real prerequisite: rebuilt (new flags, a Debian
# update), its headers and options.h changed, and so does every object.
# Its rule runs each time but leaves the file alone when it is current.
$(BUILD)/obj/%.o: %.c $(BUILD)/cflags $(WOLFSSL_LIB) | $(BUILD)/deps-ok-$(WOLFSSL)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Archives are rebuilt whole, so an object whose source was deleted leaves.
$(LIBPX): $(PROTO_OBJ)
$(LIBRT): $(RT_OBJ)
$(LIBCN): $(CN_OBJ)
$(LIBES): $(ES_OBJ)
$(LIBSUPPORT): $(SUPPORT_OBJ)
$(LIBDIR)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)$(AR) rcs $@ $^

# A unit test links only the layers below the code it tests, so a connector
# test cannot lean on edge code without failing to link:
#   proto/*     libpx
#   rt/*        librt libpx
#   connector/* libcn librt libpx
#   edge-sim/*  libes librt libpx
# Tests built on tests/support (mem_world runs an edge and a connector back to
# back in memory) and the allocation-failure sweeps in tests/unit/alloc, which
# drive whole requests through both daemons, link both daemons' archives.
UNIT_LIBS_proto := $(LIBPX)
UNIT_LIBS_rt := $(LIBRT) $(LIBPX)
UNIT_LIBS_connector := $(LIBCN) $(LIBRT) $(LIBPX)
UNIT_LIBS_edge-sim := $(LIBES) $(LIBRT) $(LIBPX)
UNIT_LIBS_alloc := $(LIBCN) $(LIBES) $(LIBRT) $(LIBPX)
UNIT_LIBS_BOTH := $(LIBCN) $(LIBES) $(LIBRT) $(LIBPX)
# The tests that include tests/support/mem_world.h.
MEM_WORLD_TESTS := $(patsubst tests/unit/%.c,$(BINDIR)/unit/%,\
	$(shell grep -l '"mem_world.h"' $(UNIT_SRC) /dev/null 2>/dev/null))
# Every test may use the other support modules (fake origin, fake link, ...)
# from libsupport: only the objects it calls are linked, so a connector test
# using the fake origin still links no edge code.
unit_libs = $(LIBSUPPORT) $(if $(filter $(MEM_WORLD_TESTS),$(1)),$(UNIT_LIBS_BOTH),\
	$(UNIT_LIBS_$(word 1,$(subst /, ,$(patsubst $(BINDIR)/unit/%,%,$(1))))))

.SECONDEXPANSION:
$(BINDIR)/unit/%: tests/unit/%.c $$(call unit_libs,$$@) $(WOLFSSL_LIB) $(BUILD)/wolfssl-used \
		| $(BUILD)/deps-ok-$(WOLFSSL)
	@mkdir -p $(dir $@)
	$(call say,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/support -o $@ $(filter %.c %.o %.a,$^) $(LDFLAGS_ALL) \
		$(UNIT_LDFLAGS) $(PKG_LIBS) -lcmocka -lm

# Tests that stand in for one function (the origin side of an upgrade) say so.
$(BINDIR)/unit/connector/test_cn_upgrade: UNIT_LDFLAGS := -Wl,--wrap=cn_upgrade_start
$(BINDIR)/unit/connector/test_request_path: UNIT_LDFLAGS := \
	-Wl,--wrap=cn_upgrade_start,--wrap=cn_stream_on_data
# Allocation-failure tests: every malloc-family call of our objects goes
# through tests/unit/alloc/failalloc.h.
$(BINDIR)/unit/alloc/%: UNIT_LDFLAGS := \
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup

unit: $(UNIT_BIN)

deps:
	@bash scripts/deps.sh test

deps-build:
	@bash scripts/deps.sh build

test: deps
	@$(MAKE) --no-print-directory SAN=1 build unit
	@$(MAKE) --no-print-directory build
	@$(WOLFSSL_ENV) bash tests/run.sh build/test/bin

# The long resilience scenarios (tests/resilience: restarts under h2load,
# partitions, reconnect storms); minutes each, so apart from `make test`.
# CI runs both. RESILIENCE_ONLY=substr runs the matching scripts.
test-resilience: deps
	@$(MAKE) --no-print-directory SAN=1 build unit
	@bash tests/run_resilience.sh build/test/bin "$(RESILIENCE_ONLY)"

# The TLS scan alone (testssl.sh against both edge listeners; also in `make test`).
tlsscan: deps
	@$(MAKE) --no-print-directory SAN=1 build
	@BIN=$(CURDIR)/build/test/bin bash tests/integration/tlsscan.sh

demo: deps-build all
	@bash scripts/demo.sh

bench: deps-build all
	@bash scripts/bench.sh

# The shared store on one PostgreSQL server (docs/scaling.md): claims per
# second, notice fan-out to many edges. Starts its own server.
$(BINDIR)/bench_store: tests/bench/bench_store.c $(LIBES) $(LIBRT) $(LIBPX) $(WOLFSSL_LIB) \
		$(BUILD)/wolfssl-used
	@mkdir -p $(dir $@)
	$(call say,CCLD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $(filter %.c %.a,$^) $(LDFLAGS_ALL) $(PKG_LIBS) -lm
bench-store: deps $(BINDIR)/bench_store
	@bash scripts/bench_store.sh $(BINDIR)/bench_store

# Debian packages of both binaries (build/deb/*.deb) from the release build,
# whatever SAN says: scripts/mkdeb.sh.
deb:
	@$(MAKE) --no-print-directory SAN=0 build
	@bash scripts/mkdeb.sh build/release/bin

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/connector bin/edge-sim $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 docs/man/connector.1 docs/man/edge-sim.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 scripts/completion/connector scripts/completion/edge-sim \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/

# Every C file of the product and its tests, formatted as .clang-format says
# (Debian 12's clang-format 14; other versions may disagree).
FORMAT_SRC = $(shell find proto rt connector edge-sim tests -name '*.[ch]' | sort)

format:
	clang-format -i $(FORMAT_SRC)

# Fails, naming each file and line, if any file differs from what `make
# format` would write (CI runs it before `make test`).
format-check: deps
	@clang-format --dry-run -Werror $(FORMAT_SRC) && \
		echo "format-check: $(words $(FORMAT_SRC)) files formatted"

# Everything built, except the wolfSSL build (build/wolfssl or WOLFSSL_DIR,
# a minute or two to remake): `make distclean` removes that too.
clean:
	rm -rf bin $(foreach d,$(wildcard build/*),$(if $(filter $(abspath build/wolfssl $(WOLFSSL_DIR)),$(abspath $(d))),,$(d)))

distclean: clean
	rm -rf build

-include $(shell find build -path '$(WOLFSSL_DIR)' -prune -o -name '*.d' -print 2>/dev/null)

# libFuzzer targets for every parser (clang); FUZZ_SECONDS per target.
fuzz:
	@$(WOLFSSL_ENV) bash tests/fuzz/run.sh
