/* main.c: the auditrun host, shaped like Lua's lua.c. It finds the script
 * (a file or a bundled workflow), and auditrun.task.main runs it and the
 * tasks it spawned and says the exit code (csrc/exitcode.h).
 *
 * main() runs pmain under lua_pcall; a message handler adds the traceback
 * to unexpected errors; an error value raised on purpose (a table with
 * __tostring) prints as its one line. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "exitcode.h"
#include "version.h"

static const char *progname = "auditrun";
static char luadir[PATH_MAX + 64], libdir[PATH_MAX + 64], scriptdir[PATH_MAX + 64];

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s [--profile NAME] SCRIPT.lua [ARGS...]   run a Lua script\n"
          "       %s [--profile NAME] WORKFLOW [ARGS...]     run a bundled workflow\n"
          "       %s [--profile NAME] config                 show the settings in effect\n"
          "       %s --each-profile [--profiles A,B] [--parallel N] WORKFLOW [ARGS...]\n"
          "                                           run a workflow for each profile\n"
          "       %s completion bash|zsh                     print a shell completion script\n"
          "       %s --list | --version | --help\n",
          progname, progname, progname, progname, progname, progname);
}

static void help(void) {
  usage(stdout);
  printf("\n"
         "options:\n"
         "  --profile NAME, --profile=NAME\n"
         "                  use profile NAME of the config file (default: the profile\n"
         "                  named \"default\", if there is one)\n"
         "  --each-profile  run WORKFLOW once for each profile of the config file, side\n"
         "                  by side in this process (each tenant with its own five\n"
         "                  export slots); --out and --out-dir are parent folders with a\n"
         "                  folder per profile; log lines start with the profile; a\n"
         "                  summary line per profile; exit 3 when any failed\n"
         "  --profiles A,B  with --each-profile: only these profiles\n"
         "  --parallel N    with --each-profile: at most N tenants at once (default 10)\n"
         "  --list          list the bundled workflows, a line each\n"
         "  --version       print the version, and those of libcurl, OpenSSL and Lua\n"
         "  -h, --help      print this help; WORKFLOW --help prints a workflow's own\n"
         "  --              end of options: the next argument is the script\n"
         "\n"
         "completion: `%s completion bash` (or zsh) prints a script that completes\n"
         "workflow names and each workflow's flags; load it from ~/.bashrc with\n"
         "  source <(%s completion bash)\n"
         "or save it as ~/.local/share/bash-completion/completions/auditrun\n"
         "(zsh: as _auditrun in a folder of $fpath)\n"
         "\n"
         "environment:\n"
         "  AUDITRUN_CONFIG    the config file, a Lua file returning a table of\n"
         "                     profiles (default: ~/.config/auditrun/config.lua)\n"
         "  AUDITRUN_PROFILE   the profile to use, as --profile\n"
         "  AUDITRUN_<KEY>     any setting, e.g. AUDITRUN_CLIENT_ID; wins over the file.\n"
         "                     `%s config` lists every setting, its value and where\n"
         "                     it comes from (secrets masked)\n"
         "  https_proxy, no_proxy\n"
         "                     proxies, as libcurl reads them\n"
         "\n"
         "exit codes: 0 success, 1 failure, 2 usage error, 3 incomplete (finished\n"
         "with some items failed: rerun to finish), 130 interrupted (Ctrl-C,\n"
         "SIGTERM; a second Ctrl-C exits at once)\n",
         progname, progname, progname);
}

/* A usage error: one line, then the usage, exit 2. */
static int usage_error(int *exit_code, const char *fmt, const char *arg) {
  fprintf(stderr, "%s: ", progname);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  usage(stderr);
  *exit_code = AUDITRUN_EXIT_USAGE;
  return 0;
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* snprintf for paths; a path that does not fit is cut, and then found
 * nowhere, which the caller reports as missing. */
static void pathf(char *dst, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, size, fmt, ap);
  va_end(ap);
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int msghandler(lua_State *L) {
  if (!lua_isstring(L, 1) && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return 1;  /* an error value: its one line is the message */
  if (lua_type(L, 1) != LUA_TSTRING)
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, lua_tostring(L, -1), 1);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int status, base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

static void report(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

static int list_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

#define MAX_SCRIPTS 256

/* The bundled workflows' names, sorted, into names (each malloc'd): how
 * many, or -1 when the folder cannot be read. */
static int script_names(char *names[MAX_SCRIPTS]) {
  DIR *d = opendir(scriptdir);
  struct dirent *e;
  int n = 0;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL && n < MAX_SCRIPTS) {
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0 && e->d_name[0] != '.') {
      char *name = strndup(e->d_name, len - 4);
      if (name) names[n++] = name;
    }
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, list_cmp);
  return n;
}

/* Edit distance (insertions, deletions, substitutions) between two short
 * words, for "did you mean" hints; words of 64 bytes or more are never
 * close to anything. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[64], prev_diag;
  if (la >= 64 || lb >= 64) return (size_t)-1;
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    prev_diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = prev_diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      prev_diag = up;
      row[j] = best;
    }
  }
  return row[lb];
}

/* The candidate nearest to word, if it is a likely typo of it (at most two
 * edits, and fewer than a third of the word), else NULL. */
static const char *nearest(const char *word, const char *const *candidates, size_t n) {
  const char *best = NULL;
  size_t best_d = (size_t)-1, limit = strlen(word) / 3;
  if (limit > 2) limit = 2;
  if (limit < 1) limit = 1;
  for (size_t i = 0; i < n; i++) {
    size_t d = edit_distance(word, candidates[i]);
    if (d < best_d) best_d = d, best = candidates[i];
  }
  return best_d <= limit ? best : NULL;
}

/* Each bundled workflow's first line is "-- what it does". */
static int list_scripts(void) {
  char *names[MAX_SCRIPTS];
  int got = script_names(names);
  size_t n;
  if (got < 0) {
    fprintf(stderr, "%s: no bundled workflows in %s\n", progname, scriptdir);
    return 1;
  }
  n = (size_t)got;
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX + 300], line[256] = "";
    FILE *f;
    snprintf(path, sizeof path, "%s/%s.lua", scriptdir, names[i]);
    if ((f = fopen(path, "r")) != NULL) {
      if (fgets(line, sizeof line, f) && strncmp(line, "--", 2) == 0) {
        char *p = line + 2;
        while (*p == ' ' || *p == '-') p++;
        p[strcspn(p, "\r\n")] = '\0';
        memmove(line, p, strlen(p) + 1);
      } else {
        line[0] = '\0';
      }
      fclose(f);
    }
    printf("%-24s %s\n", names[i], line);
    free(names[i]);
  }
  return 0;
}

/* The C core is core.so beside the modules, loaded only when a script
 * (or --version) needs it: --help and --list start as fast as lua itself. */
static void set_paths(lua_State *L) {
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", luadir, luadir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pushfstring(L, "%s/?.so;", libdir);
  lua_getfield(L, -2, "cpath");
  lua_concat(L, 2);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
}

/* Where the modules, the core and the workflows are, from where this binary
 * is (never from paths compiled in, so one build serves every prefix and
 * cron or systemd need no LUA_PATH):
 *  - a build tree: build/auditrun (or a variant, build/asan/auditrun) beside
 *    csrc/, lua/ and scripts/;
 *  - installed, BIN/auditrun: the modules in BIN/../share/lua/5.4, the core
 *    in BIN/../lib/lua/5.4, the workflows in BIN/../share/auditrun/scripts
 *    (`make install`) or in the rock's own folder of a LuaRocks tree,
 *    BIN/../lib/luarocks/rocks-5.4/auditrun/VERSION/scripts. */
static void find_rock_scripts(const char *base) {
  char rocks[PATH_MAX + 64], probe[PATH_MAX + 400];
  struct dirent *e;
  DIR *d;
  pathf(rocks, sizeof rocks, "%s/lib/luarocks/rocks-5.4/auditrun", base);
  if ((d = opendir(rocks)) == NULL) return;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    pathf(probe, sizeof probe, "%s/%s/scripts", rocks, e->d_name);
    /* A tree holds one version of a rock at a time, unless asked otherwise;
     * then the one matching this binary wins. */
    if (is_dir(probe)) {
      pathf(scriptdir, sizeof scriptdir, "%s", probe);
      if (strncmp(e->d_name, AUDITRUN_VERSION "-", strlen(AUDITRUN_VERSION) + 1) == 0) break;
    }
  }
  closedir(d);
}

static void find_dirs(void) {
  char exe[PATH_MAX], probe[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash;
  if (n <= 0) n = 0;
  exe[n] = '\0';
  slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  for (const char *up = "/..", *up2 = "/../.."; up; up = up2, up2 = NULL) {
    pathf(probe, sizeof probe, "%s%s/csrc/main.c", exe, up);
    if (is_file(probe)) {
      pathf(luadir, sizeof luadir, "%s%s/lua", exe, up);
      pathf(libdir, sizeof libdir, "%s/lib", exe);
      pathf(scriptdir, sizeof scriptdir, "%s%s/scripts", exe, up);
      return;
    }
  }
  /* the prefix: BIN's parent, written out (no "..") for messages */
  slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  pathf(luadir, sizeof luadir, "%s/share/lua/5.4", exe);
  pathf(libdir, sizeof libdir, "%s/lib/lua/5.4", exe);
  pathf(scriptdir, sizeof scriptdir, "%s/share/auditrun/scripts", exe);
  if (!is_dir(scriptdir)) find_rock_scripts(exe);
}

/* The core as package.preload["auditrun.core"], opened with lazy binding:
 * Lua's own loader opens C modules with RTLD_NOW, which binds every symbol
 * of libcurl, OpenSSL and their ~30 libraries before the first use, some
 * 1.5 ms of every start-up that a script pays whether it makes a request or
 * not. Where core.so is not beside us, package.cpath finds it as before. */
static void preload_core(lua_State *L) {
  char path[PATH_MAX + 100];
  void *lib;
  lua_CFunction open;
  pathf(path, sizeof path, "%s/auditrun/core.so", libdir);
  if (!is_file(path) || (lib = dlopen(path, RTLD_LAZY | RTLD_LOCAL)) == NULL) return;
  open = (lua_CFunction)dlsym(lib, "luaopen_auditrun_core");
  if (!open) return;  /* not ours: the loader reports it as it would */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open);
  lua_setfield(L, -2, "auditrun.core");
  lua_pop(L, 1);
}

/* --version: auditrun's, then the libcurl and OpenSSL it runs with, as the
 * core finds them at run time (so it loads the core, as any script does),
 * and the Lua it was built with. */
static int print_version(lua_State *L) {
  const char *msg;
  printf("auditrun %s\n", AUDITRUN_VERSION);
  preload_core(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "auditrun.core");
  if (docall(L, 1, 1) != LUA_OK) {
    /* One line: the first of the loader's message (not its search list). */
    int len;
    msg = lua_tostring(L, -1);
    if (!msg) msg = "";
    len = (int)strcspn(msg, "\n");
    while (len > 0 && (msg[len - 1] == ':' || msg[len - 1] == ' ')) len--;
    fflush(stdout);
    fprintf(stderr, "%s: cannot load its core (%s/auditrun/core.so) to name libcurl's and OpenSSL's versions: %.*s\n",
            progname, libdir, len, msg);
    return AUDITRUN_EXIT_FAILURE;
  }
  lua_getfield(L, -1, "curl_version");
  lua_getfield(L, -2, "openssl_version");
  printf("libcurl %s\n%s\n%s\n", lua_tostring(L, -2), lua_tostring(L, -1), LUA_RELEASE);
  lua_pop(L, 3);
  return EXIT_SUCCESS;
}

/* arg as in lua.c: arg[0] the script, arg[1..] its arguments, arg[-1] us.
 * arg[0] is the file run: a bundled workflow's is its path in scriptdir,
 * where it finds the others (completion). */
static void create_arg(lua_State *L, char **argv, int argc, int script, const char *path) {
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, i == script ? path : argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int resolve_script(const char *name, char *out, size_t outlen) {
  size_t len = strlen(name);
  if (strchr(name, '/') || (len > 4 && strcmp(name + len - 4, ".lua") == 0)) {
    snprintf(out, outlen, "%s", name);
  } else {
    snprintf(out, outlen, "%s/%s.lua", scriptdir, name);
  }
  return is_file(out);
}

/* Calls auditrun.<module>.<fn>() as kept by pmain, under the handler. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int *exit_code = (int *)lua_touserdata(L, 3);
  char path[PATH_MAX + 300];
  int i = 1, n, each_profile = 0, profile_given = 0;
  const char *profiles = NULL, *parallel = NULL;

  luaL_checkversion(L);
  luaL_openlibs(L);
  find_dirs();
  set_paths(L);
  /* Options end at the first argument that is not one: the script's own
   * options follow it. */
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help();
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      *exit_code = print_version(L);
      return 0;
    } else if (strcmp(a, "--list") == 0) {
      *exit_code = list_scripts();
      return 0;
    } else if (strncmp(a, "--profile=", 10) == 0 || strcmp(a, "--profile") == 0) {
      const char *name = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : "");
      if (name[0] == '\0' || name[0] == '-')
        return usage_error(exit_code, "%s needs a profile name: --profile NAME", "--profile");
      setenv("AUDITRUN_PROFILE", name, 1);
      profile_given = 1;
    } else if (strcmp(a, "--each-profile") == 0) {
      each_profile = 1;
    } else if (strncmp(a, "--profiles=", 11) == 0 || strcmp(a, "--profiles") == 0) {
      profiles = a[10] == '=' ? a + 11 : (i + 1 < argc ? argv[++i] : "");
      if (profiles[0] == '\0' || profiles[0] == '-')
        return usage_error(exit_code, "%s needs profile names: --profiles a,b,c", "--profiles");
    } else if (strncmp(a, "--parallel=", 11) == 0 || strcmp(a, "--parallel") == 0) {
      parallel = a[10] == '=' ? a + 11 : (i + 1 < argc ? argv[++i] : "");
      if (strspn(parallel, "0123456789") != strlen(parallel) || parallel[0] == '\0' || atoi(parallel) < 1 ||
          strlen(parallel) > 6)
        return usage_error(exit_code, "%s needs a number of tenants: --parallel 10", "--parallel");
    } else if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else {
      static const char *const host_flags[] = {"--help", "--version", "--list", "--profile", "--each-profile",
                                               "--profiles", "--parallel"};
      char flag[64];
      const char *near;
      snprintf(flag, sizeof flag, "%.*s", (int)strcspn(a, "="), a);
      near = nearest(flag, host_flags, sizeof host_flags / sizeof *host_flags);
      if (near) {
        fprintf(stderr, "%s: unknown option '%s'\nDid you mean '%s'? (auditrun --help lists them)\n", progname, a,
                near);
        *exit_code = AUDITRUN_EXIT_USAGE;
        return 0;
      }
      return usage_error(exit_code, "unknown option '%s'", a);
    }
  }
  if (profiles && !each_profile)
    return usage_error(exit_code, "%s picks the profiles of --each-profile: give both", "--profiles");
  if (parallel && !each_profile)
    return usage_error(exit_code, "%s is how many tenants --each-profile runs at once: give both", "--parallel");
  if (each_profile && profile_given)
    return usage_error(exit_code, "%s picks every profile (or those of --profiles): leave --profile out",
                       "--each-profile");
  if (i >= argc) {
    usage(stderr);
    *exit_code = AUDITRUN_EXIT_USAGE;
    return 0;
  }
  if (!resolve_script(argv[i], path, sizeof path)) {
    char *names[MAX_SCRIPTS];
    int n = strchr(argv[i], '/') ? -1 : script_names(names);
    const char *near = n > 0 ? nearest(argv[i], (const char *const *)names, (size_t)n) : NULL;
    fprintf(stderr, "%s: no script '%s' (and no bundled workflow of that name; see --list)\n", progname, argv[i]);
    if (near) fprintf(stderr, "Did you mean '%s'?\n", near);
    for (int k = 0; k < n; k++) free(names[k]);
    *exit_code = AUDITRUN_EXIT_USAGE;
    return 0;
  }

  create_arg(L, argv, argc, i, path);

  /* One Lua entry point: auditrun.task.main runs the script and then the
   * tasks it spawned, and returns the exit code and, on failure, the
   * message. The scheduler loads first, so the script's coroutines are the
   * patched ones. */
  preload_core(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "auditrun.task");
  if (docall(L, 1, 1) != LUA_OK) {
    /* A host copied away from its files: one line, not Lua's search list. */
    const char *msg = lua_tostring(L, -1);
    if (msg && strstr(msg, "module 'auditrun.task' not found")) {
      fprintf(stderr, "%s: its Lua modules are not where it looks (%s/auditrun, then LUA_PATH): "
              "run the auditrun that make install or luarocks installed with them\n", progname, luadir);
      *exit_code = AUDITRUN_EXIT_FAILURE;
      return 0;
    }
    goto failed;
  }
  lua_getfield(L, -1, "main");
  lua_remove(L, -2);
  n = argc - i - 1;
  if (each_profile) {
    /* auditrun.each runs the script once per profile: its path, its name,
     * the profiles and how many at once come before the script's own
     * arguments. */
    if (luaL_loadstring(L, "return require('auditrun.each').run(...)") != LUA_OK) goto failed;
    luaL_checkstack(L, n + 4, "too many arguments to script");
    lua_pushstring(L, path);
    lua_pushstring(L, argv[i]);
    lua_pushstring(L, profiles ? profiles : "");
    lua_pushinteger(L, parallel ? atoi(parallel) : 10);
    n += 4;
  } else {
    if (luaL_loadfile(L, path) != LUA_OK) goto failed;
    luaL_checkstack(L, n, "too many arguments to script");
  }
  for (int j = i + 1; j < argc; j++) lua_pushstring(L, argv[j]);
  if (docall(L, n + 1, 2) != LUA_OK) goto failed;
  if (lua_isstring(L, -1)) report(lua_tostring(L, -1));
  *exit_code = (int)luaL_optinteger(L, -2, AUDITRUN_EXIT_FAILURE);
  return 0;

failed:
  report(lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error with no message)");
  *exit_code = AUDITRUN_EXIT_FAILURE;
  return 0;
}

int main(int argc, char **argv) {
  int status, exit_code = EXIT_SUCCESS;
  lua_State *L;
  /* A reader that goes away (| head) must not kill a run: writes to it
   * fail and are ignored instead. */
  signal(SIGPIPE, SIG_IGN);
  /* A write past the file size limit (ulimit -f) must fail with EFBIG and
   * be reported, naming the file, rather than kill the run mid-write. */
  signal(SIGXFSZ, SIG_IGN);
  L = luaL_newstate();
  if (!L) {
    report("cannot create state: not enough memory");
    return AUDITRUN_EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  lua_pushlightuserdata(L, &exit_code);
  status = lua_pcall(L, 3, 0, 0);
  if (status != LUA_OK) {
    report(lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error with no message)");
    exit_code = AUDITRUN_EXIT_FAILURE;
  }
  lua_close(L);  /* the core's finaliser releases libcurl, OpenSSL, the loop */
  fflush(stdout);
  return exit_code;
}
