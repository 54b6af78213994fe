/* http.h: one HTTP transfer on the shared multi handle. Knows nothing of Lua:
 * lhttp.c fills a request from a Lua table and reads the response back. */
#ifndef AUDITRUN_HTTP_H
#define AUDITRUN_HTTP_H

#include <curl/curl.h>
#include <stdio.h>

#include "loop.h"

typedef struct http_header {
  char *name;   /* lower-cased */
  char *value;  /* trimmed */
} http_header;

typedef struct http_request {
  loop_item item;        /* first, so a loop_item* is the request */
  CURL *easy;
  struct curl_slist *headers;
  char errbuf[CURL_ERROR_SIZE];
  int post;             /* method is POST: uploads use POSTFIELDSIZE */
  int started;
  int finished;
  int aborted;
  int too_large;         /* body exceeded max_body (in memory) or max_download (to a file) */
  int file_error;        /* writing the output file failed */
  CURLcode result;
  /* response body kept in memory when no output file is given */
  char *body;
  size_t body_len, body_cap, max_body;
  FILE *out;             /* response streamed here */
  unsigned long long written, max_download;  /* bytes to out (decoded), and their limit */
  int to_file;           /* the body went to a file, not to memory */
  FILE *in;              /* request body read from here */
  http_header *resp;
  size_t nresp, capresp;
  int follow;            /* redirects are followed (max_redirects > 0) */
  int same_origin;       /* the request carries credentials: no redirect leaves its origin */
  char refused[512];     /* why a redirect was refused, or "" */
} http_request;

int http_init(http_request *req, loop *lp, char *err, size_t errlen);
void http_free(http_request *req, loop *lp);

int http_set_method(http_request *req, const char *method, char *err, size_t errlen);
int http_set_url(http_request *req, const char *url, char *err, size_t errlen);
int http_add_header(http_request *req, const char *line, char *err, size_t errlen);
int http_set_body(http_request *req, const char *data, size_t len, char *err, size_t errlen);
int http_set_body_file(http_request *req, const char *path, char *err, size_t errlen);
/* The body goes to a file: a new one by name (never through a symlink), or
 * the open fd of a temporary file (emptied first; the transfer writes a
 * duplicate of it, the caller keeps its own). */
int http_set_output_file(http_request *req, const char *path, char *err, size_t errlen);
int http_set_output_fd(http_request *req, int fd, char *err, size_t errlen);
int http_set_ca_file(http_request *req, const char *path, char *err, size_t errlen);
void http_set_timeouts(http_request *req, double connect, double total,
                       long low_speed_bytes, double low_speed_seconds);
void http_set_max_redirects(http_request *req, long n);
/* The request carries credentials (a token, an API key): a redirect to
 * another origin (scheme, host or port) ends the transfer with kind
 * "redirect" instead of being followed; one within the origin is followed. */
void http_set_same_origin(http_request *req, int on);
void http_set_max_body(http_request *req, size_t n);
/* Largest body written to a file, after decoding (a small gzip answer can
 * expand to any size); 0 means no limit. */
void http_set_max_download(http_request *req, unsigned long long n);

int http_start(http_request *req, loop *lp, char *err, size_t errlen);
void http_abort(http_request *req, loop *lp);

/* After completion: NULL when the transfer worked (whatever the status),
 * else the error kind, with a readable message in msg. */
const char *http_error(const http_request *req, char *msg, size_t msglen);

#endif
