rockspec_format = "3.0"
package = "auditrun"
version = "scm-1"
source = {
  url = "git+file:///dev/null",  -- built from a checkout with `luarocks make`
}
description = {
  summary = "Lua workflows for tenant audit and activity reporting APIs",
  detailed = [[
    A C core (HTTP on libcurl's multi interface, JWT signing on OpenSSL,
    timers) with Lua 5.4 bindings, a host binary that runs workflow scripts,
    and clients for AvePoint Insights, DealCloud and ExaVault activity.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
  "lua-cjson",
}
-- libcurl and OpenSSL are found by the Makefile through pkg-config
-- (Debian keeps curl.h under a multiarch directory LuaRocks does not search).
build = {
  type = "make",
  build_target = "all",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    BINDIR = "$(BINDIR)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
  },
}
