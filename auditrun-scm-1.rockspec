rockspec_format = "3.0"
package = "auditrun"
version = "scm-1"
-- Releases: `make dist` writes auditrun-VERSION.tar.gz and the rockspec for
-- it (auditrun-VERSION-1.rockspec, this file with its version and url);
-- `luarocks pack` on that gives a .src.rock that builds without network.
source = {
  url = "git+https://github.com/auditrun/auditrun.git",
}
description = {
  summary = "Lua workflows for tenant audit and activity reporting APIs",
  detailed = [[
    A C core (HTTP on libcurl's multi interface, JWT signing on OpenSSL 3,
    timers, crash-safe files, SQLite through libsqlite3) with Lua 5.4 bindings, a host binary
    (`auditrun`) that runs workflow scripts as coroutines on one event loop,
    and clients for AvePoint Insights (the AvePoint Graph API and the legacy
    Web API: app sign-in with a certificate or secret, paged reports, export
    jobs that survive reruns), DealCloud's user activity audit log and
    ExaVault's session and webhook logs, with bundled Insights workflows.
  ]],
  homepage = "https://github.com/auditrun/auditrun",
  license = "MIT",
  labels = { "audit", "reporting", "http", "libcurl" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
  "lua-cjson",
  "argparse",
  "lua-zlib",
  "luaexpat",
}
-- libcurl (OpenSSL flavour) and OpenSSL 3. LuaRocks looks for libcurl's
-- library only: Debian keeps curl.h in a multiarch folder LuaRocks does not
-- search, and the Makefile asks pkg-config or curl-config for it when the
-- CURL_INCDIR given has no curl/curl.h.
external_dependencies = {
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
}
build = {
  type = "make",
  build_target = "all",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CURL_INCDIR = "$(CURL_INCDIR)",
    CURL_LIBDIR = "$(CURL_LIBDIR)",
    OPENSSL_INCDIR = "$(OPENSSL_INCDIR)",
    OPENSSL_LIBDIR = "$(OPENSSL_LIBDIR)",
    SQLITE_INCDIR = "$(SQLITE_INCDIR)",
    SQLITE_LIBDIR = "$(SQLITE_LIBDIR)",
  },
  -- The host goes to the tree's bin folder, the modules and the core where
  -- Lua finds them, the workflows into the rock's own folder, where the
  -- host looks for them (they are scripts, not modules).
  install_variables = {
    PREFIX = "$(PREFIX)",
    BINDIR = "$(BINDIR)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
    SCRIPTDIR = "$(PREFIX)/scripts",
  },
}
