# auditrun: a C core (csrc/) with Lua 5.4 bindings, and the host binary.
# `make` builds build/auditrun and build/lib/auditrun/core.so; `make test`
# runs the suite three times: plain, under ASan+UBSan, under valgrind.

PKGS      := lua5.4 libcurl openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC        ?= cc
CFLAGS    ?= -O2 -g
LIBFLAG   ?= -shared
WARN      := -Wall -Wextra -Wno-unused-parameter
ALL_CFLAGS := -std=gnu11 -fPIC $(WARN) $(PKG_CFLAGS) $(CFLAGS)

PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
LUADIR    ?= $(PREFIX)/share/lua/5.4
LIBDIR    ?= $(PREFIX)/lib/lua/5.4
DESTDIR   ?=

CORE_SRC  := csrc/lcore.c csrc/lloop.c csrc/lhttp.c csrc/ljwt.c csrc/lfsio.c \
             csrc/loop.c csrc/http.c csrc/jwt.c csrc/fsio.c
HEADERS   := $(wildcard csrc/*.h)
CORE_OBJ  := $(CORE_SRC:csrc/%.c=build/obj/%.o)
ASAN_OBJ  := $(CORE_SRC:csrc/%.c=build/asan/obj/%.o)
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

DEPS_DEBIAN := build-essential pkg-config lua5.4 liblua5.4-dev libcurl4-openssl-dev \
               libssl-dev openssl lua-cjson lua-busted lua-check luarocks valgrind \
               curl perl python3 python3-requests
# Node may come from elsewhere than Debian (NodeSource): only ask for
# Debian's when there is no npm at all.
DEPS_NODE   := $(if $(shell command -v npm 2>/dev/null),,nodejs npm)

.PHONY: all asan test demo bench install clean deps sandbox-deps

all: build/auditrun build/lib/auditrun/core.so

build/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/asan/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 $(ASAN_FLAGS) -c $< -o $@

# The host links Lua alone; it loads the core (and with it libcurl and
# OpenSSL) from lib/auditrun/core.so beside it when a script needs it.
LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null)
LUA_LIBS  := $(shell pkg-config --libs lua5.4 2>/dev/null)
HOST_LDFLAGS := -Wl,-E

build/auditrun: csrc/main.c csrc/version.h build/lib/auditrun/core.so
	$(CC) $(ALL_CFLAGS) $(HOST_LDFLAGS) -o $@ csrc/main.c $(LUA_LIBS)

build/lib/auditrun/core.so: $(CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LIBFLAG) -o $@ $(CORE_OBJ) $(filter-out -llua5.4,$(PKG_LIBS))

asan: build/asan/auditrun
build/asan/auditrun: csrc/main.c csrc/version.h build/asan/lib/auditrun/core.so
	$(CC) $(ALL_CFLAGS) -O1 $(ASAN_FLAGS) $(HOST_LDFLAGS) -o $@ csrc/main.c $(LUA_LIBS)

build/asan/lib/auditrun/core.so: $(ASAN_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LIBFLAG) $(ASAN_FLAGS) -o $@ $(ASAN_OBJ) $(filter-out -llua5.4,$(PKG_LIBS))

# The installed host has the install paths compiled in.
build/install/auditrun: csrc/main.c csrc/version.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(HOST_LDFLAGS) -DAUDITRUN_LUADIR='"$(LUADIR)"' -DAUDITRUN_LIBDIR='"$(LIBDIR)"' \
	  -o $@ csrc/main.c $(LUA_LIBS)

sandbox-deps: tests/sandbox/node_modules/.package-lock.json
tests/sandbox/node_modules/.package-lock.json: tests/sandbox/package-lock.json
	npm ci --prefix tests/sandbox --no-audit --no-fund --loglevel=error

test: deps all asan sandbox-deps
	bash tests/run

demo: deps all sandbox-deps
	build/auditrun tests/demo.lua

bench: deps all sandbox-deps
	build/auditrun tests/bench/run.lua

install: build/install/auditrun build/lib/auditrun/core.so
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/auditrun \
	  $(DESTDIR)$(LUADIR)/auditrun $(DESTDIR)$(LUADIR)/auditrun/scripts
	install -m 755 build/install/auditrun $(DESTDIR)$(BINDIR)/auditrun
	install -m 755 build/lib/auditrun/core.so $(DESTDIR)$(LIBDIR)/auditrun/core.so
	cd lua && find auditrun -name '*.lua' | while read -r f; do \
	  install -D -m 644 "$$f" "$(DESTDIR)$(LUADIR)/$$f"; done
	install -m 644 scripts/*.lua $(DESTDIR)$(LUADIR)/auditrun/scripts/

clean:
	rm -rf build

# Installs what is missing when run as root on Debian; otherwise prints the line.
deps:
	@missing=$$(for p in $(DEPS_DEBIAN) $(DEPS_NODE); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "apt-get install $$missing"; fi
