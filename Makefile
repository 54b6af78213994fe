# auditrun: a C core (csrc/) with Lua 5.4 bindings, and the host binary.
# `make` builds build/auditrun and build/lib/auditrun/core.so; `make test`
# runs the suite three times: plain, under ASan+UBSan, under valgrind.

VERSION   := $(shell sed -n 's/^\#define AUDITRUN_VERSION "\(.*\)"/\1/p' csrc/version.h)

# Compiler and linker flags are computed when a recipe first needs them, not
# when this file is read: on a fresh machine `make demo` and `make test`
# install pkg-config and the headers (`make deps`) before anything compiles.
# LuaRocks passes LUA_INCDIR and the external dependencies' *_INCDIR and
# *_LIBDIR; those win over pkg-config. CURL_INCDIR wins only when it holds
# curl/curl.h: LuaRocks passes its prefix's include folder (/usr/include)
# while Debian keeps curl.h in a multiarch folder, which pkg-config (else
# curl-config) names.
PKG_CONFIG ?= pkg-config
once = $(eval $1 := $2)$($1)
pkg = $(shell $(PKG_CONFIG) $1 $2 2>/dev/null)
LUA_CFLAGS  = $(call once,LUA_CFLAGS,$(if $(LUA_INCDIR),-I$(LUA_INCDIR),$(call pkg,--cflags,lua5.4)))
LUA_LIBS    = $(call once,LUA_LIBS,$(or $(call pkg,--libs,lua5.4),-llua5.4))
CURL_CFLAGS = $(call once,CURL_CFLAGS,$(if $(wildcard $(CURL_INCDIR)/curl/curl.h),-I$(CURL_INCDIR),$(or \
              $(call pkg,--cflags,libcurl),$(shell curl-config --cflags 2>/dev/null))))
CURL_LIBS   = $(call once,CURL_LIBS,$(if $(CURL_LIBDIR),-L$(CURL_LIBDIR) -lcurl,$(or $(call pkg,--libs,libcurl),-lcurl)))
SSL_CFLAGS  = $(call once,SSL_CFLAGS,$(if $(OPENSSL_INCDIR),-I$(OPENSSL_INCDIR),$(call pkg,--cflags,openssl)))
SSL_LIBS    = $(call once,SSL_LIBS,$(if $(OPENSSL_LIBDIR),-L$(OPENSSL_LIBDIR) -lssl -lcrypto,$(or $(call pkg,--libs,openssl),-lssl -lcrypto)))
SQLITE_CFLAGS = $(call once,SQLITE_CFLAGS,$(if $(SQLITE_INCDIR),-I$(SQLITE_INCDIR),$(call pkg,--cflags,sqlite3)))
SQLITE_LIBS   = $(call once,SQLITE_LIBS,$(if $(SQLITE_LIBDIR),-L$(SQLITE_LIBDIR) -lsqlite3,$(or $(call pkg,--libs,sqlite3),-lsqlite3)))

CC        ?= cc
CFLAGS    ?= -O2 -g
LIBFLAG   ?= -shared
WARN      := -Wall -Wextra -Wno-unused-parameter
ALL_CFLAGS = -std=gnu11 -fPIC $(WARN) $(LUA_CFLAGS) $(CURL_CFLAGS) $(SSL_CFLAGS) $(SQLITE_CFLAGS) $(CFLAGS)
CORE_LIBS  = $(CURL_LIBS) $(SSL_LIBS) $(SQLITE_LIBS)

# make install: the host in BINDIR finds the modules, the core and the
# workflows relative to itself (../share/lua/5.4, ../lib/lua/5.4,
# ../share/auditrun/scripts), so one binary serves every prefix.
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
LUADIR    ?= $(PREFIX)/share/lua/5.4
LIBDIR    ?= $(PREFIX)/lib/lua/5.4
SCRIPTDIR ?= $(PREFIX)/share/auditrun/scripts
DESTDIR   ?=

CORE_SRC  := csrc/lcore.c csrc/lloop.c csrc/lhttp.c csrc/ljwt.c csrc/ldigest.c csrc/lfsio.c csrc/lsqlite.c csrc/lcsv.c csrc/ljson.c \
             csrc/ltime.c csrc/lmerge.c csrc/loop.c csrc/http.c csrc/jwt.c csrc/digest.c csrc/fsio.c
HEADERS   := $(wildcard csrc/*.h)
CORE_OBJ  := $(CORE_SRC:csrc/%.c=build/obj/%.o)
ASAN_OBJ  := $(CORE_SRC:csrc/%.c=build/asan/obj/%.o)
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Debian packages. DEPS_DEMO builds auditrun and runs it against the
# sandbox (make demo, make sandbox); DEPS_TEST is the test toolchain that
# make test, fuzz, chaos and bench add: busted, luacheck, LuaRocks,
# valgrind, clang with its sanitizer runtime, and the peers bench measures.
DEPS_DEMO := build-essential pkg-config lua5.4 liblua5.4-dev libcurl4-openssl-dev \
             libssl-dev libsqlite3-dev openssl lua-cjson lua-argparse lua-zlib lua-expat
DEPS_TEST := lua-busted lua-check luarocks valgrind time curl perl python3 python3-requests \
             clang libclang-rt-14-dev
# Node may come from elsewhere than Debian (NodeSource): only ask for
# Debian's when there is no npm at all.
DEPS_NODE    = $(if $(shell command -v npm 2>/dev/null),,nodejs npm)

.PHONY: all asan test demo sandbox bench install clean deps demo-deps sandbox-deps dist fuzz fuzz-build chaos docs

all: build/auditrun build/lib/auditrun/core.so

build/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/asan/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(ASAN_FLAGS) -c $< -o $@

# The host links Lua alone; it loads the core (and with it libcurl and
# OpenSSL) from lib/auditrun/core.so beside it when a script needs it.
HOST_LDFLAGS := -Wl,-E

build/auditrun: csrc/main.c csrc/version.h build/lib/auditrun/core.so
	$(CC) $(ALL_CFLAGS) $(HOST_LDFLAGS) -o $@ csrc/main.c $(LUA_LIBS)

build/lib/auditrun/core.so: $(CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LIBFLAG) -o $@ $(CORE_OBJ) $(CORE_LIBS)

asan: build/asan/auditrun
build/asan/auditrun: csrc/main.c csrc/version.h build/asan/lib/auditrun/core.so
	$(CC) $(ALL_CFLAGS) -O1 $(ASAN_FLAGS) $(HOST_LDFLAGS) -o $@ csrc/main.c $(LUA_LIBS)

build/asan/lib/auditrun/core.so: $(ASAN_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LIBFLAG) $(ASAN_FLAGS) -o $@ $(ASAN_OBJ) $(CORE_LIBS)

# libFuzzer targets (tests/fuzz/): the C parsers, and the Lua-side parsers
# through tests/fuzz/harness.lua. `make fuzz` runs each for FUZZ_SECONDS;
# `make test` runs each briefly. Built with clang (clang and
# libclang-rt-14-dev are in DEPS_TEST).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS    = -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -Icsrc $(LUA_CFLAGS) $(CURL_CFLAGS) $(SSL_CFLAGS) $(SQLITE_CFLAGS)
FUZZ_C       := b64url key http csv
FUZZ_LUA     := jwt_decode disposition zip retry_after
FUZZ_BINS    := $(FUZZ_C:%=build/fuzz/%) $(FUZZ_LUA:%=build/fuzz/%)
FUZZ_OBJ     := $(CORE_SRC:csrc/%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# The http and csv targets include http.c and lcsv.c themselves, to reach
# their static functions.
$(FUZZ_C:%=build/fuzz/%): build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< \
	  $(filter-out $(if $(filter http,$*),build/fuzz/obj/http.o) $(if $(filter csv,$*),build/fuzz/obj/lcsv.o),\
	  $(FUZZ_OBJ)) $(CORE_LIBS) $(LUA_LIBS)

$(FUZZ_LUA:%=build/fuzz/%): build/fuzz/%: tests/fuzz/lua_target.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DFUZZ_TARGET='"$*"' -DFUZZ_ROOT='"$(CURDIR)"' -o $@ $< \
	  $(FUZZ_OBJ) $(CORE_LIBS) $(LUA_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	bash tests/fuzz/run $(FUZZ_SECONDS)

# The export workflows under faults and kill -9 against the sandbox
# (tests/chaos/run.lua); `make test` runs a short one (tests/chaos_spec.lua).
CHAOS_ARGS ?= --jobs 2000 --kills 20 --seed 1
chaos: deps
	@$(MAKE) --no-print-directory all sandbox-deps
	build/auditrun tests/chaos/run.lua $(CHAOS_ARGS)

# The floor `make bench` compares start-up against: a program that only
# links libcurl and initialises it.
build/bench/curl-floor: tests/bench/curl_floor.c
	@mkdir -p $(@D)
	$(CC) $(CURL_CFLAGS) $(CFLAGS) -o $@ $< $(CURL_LIBS)

sandbox-deps: tests/sandbox/node_modules/.package-lock.json
tests/sandbox/node_modules/.package-lock.json: tests/sandbox/package-lock.json
	npm ci --prefix tests/sandbox --no-audit --no-fund --loglevel=error

# The README's commands install what is missing first, then build in a
# second make so that nothing is compiled before the packages are there.
test: deps
	@$(MAKE) --no-print-directory all asan sandbox-deps fuzz-build
	bash tests/run

demo: demo-deps
	@$(MAKE) --no-print-directory all sandbox-deps
	build/auditrun tests/demo.lua

# The sandbox tenant in the foreground until Ctrl-C, with a config profile
# and export lines for every vendor, to run workflows against it by hand
# from another terminal (tests/try_sandbox.lua).
sandbox: demo-deps
	@$(MAKE) --no-print-directory all sandbox-deps
	@build/auditrun tests/try_sandbox.lua

bench: deps
	@$(MAKE) --no-print-directory all sandbox-deps build/bench/curl-floor
	build/auditrun tests/bench/run.lua

# docs/workflows.md is every workflow's --help, made from the workflows
# (auditrun reference); cli_spec fails when it is not current.
docs: all
	build/auditrun reference --out docs/workflows.md

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/auditrun $(DESTDIR)$(SCRIPTDIR)
	install -m 755 build/auditrun $(DESTDIR)$(BINDIR)/auditrun
	install -m 755 build/lib/auditrun/core.so $(DESTDIR)$(LIBDIR)/auditrun/core.so
	cd lua && find auditrun -name '*.lua' | while read -r f; do \
	  install -D -m 644 "$$f" "$(DESTDIR)$(LUADIR)/$$f"; done
	install -m 644 scripts/*.lua $(DESTDIR)$(SCRIPTDIR)/

# make dist: build/dist/auditrun-VERSION.tar.gz and the rockspec that
# builds it (auditrun-VERSION-1.rockspec, from the scm one), which
# `luarocks pack` turns into a .src.rock. DIST_URL is where the tarball
# will be published.
DIST_NAME  := auditrun-$(VERSION)
DIST_FILES := LICENSE README.md docs Makefile auditrun-scm-1.rockspec csrc lua scripts
DIST_URL   ?= https://github.com/auditrun/auditrun/releases/download/v$(VERSION)/$(DIST_NAME).tar.gz
dist:
	@rm -rf build/dist && mkdir -p build/dist
	tar -czf build/dist/$(DIST_NAME).tar.gz --sort=name --owner=0 --group=0 \
	  --transform 's,^,$(DIST_NAME)/,' $(DIST_FILES)
	sed -e 's/^version = "scm-1"/version = "$(VERSION)-1"/' \
	  -e 's|^  url = .*|  url = "$(DIST_URL)",\n  md5 = "'"$$(md5sum < build/dist/$(DIST_NAME).tar.gz | cut -d' ' -f1)"'",\n  dir = "$(DIST_NAME)",|' \
	  auditrun-scm-1.rockspec > build/dist/$(DIST_NAME)-1.rockspec
	@echo "build/dist/$(DIST_NAME).tar.gz build/dist/$(DIST_NAME)-1.rockspec"

clean:
	rm -rf build

# deps: what every target needs, the test toolchain included; demo-deps:
# what make demo and make sandbox need. Each installs what is missing when
# run as root on Debian; otherwise it prints the apt-get line.
install_missing = @missing=$$(for p in $1; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "apt-get install $$missing"; fi

deps:
	$(call install_missing,$(DEPS_DEMO) $(DEPS_TEST) $(DEPS_NODE))

demo-deps:
	$(call install_missing,$(DEPS_DEMO) $(DEPS_NODE))
