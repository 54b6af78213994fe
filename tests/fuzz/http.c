/* http.c: libFuzzer target for the response callbacks of the HTTP core:
 * header lines (one per call, as libcurl hands them over) and body chunks
 * into memory under max_body and into a file under max_download. The input
 * is a list of records, each a length byte and that many bytes; the first
 * byte of a record says header (even) or body (odd). */
#include <stdint.h>
#include <stdio.h>

#include "../../csrc/http.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  http_request mem = {0}, file = {0};
  size_t i = 0;
  mem.max_body = 4096;
  file.max_download = 4096;
  file.out = fopen("/dev/null", "wb");
  file.to_file = 1;
  while (i + 1 < size) {
    size_t len = data[i];
    const uint8_t *rec = data + i + 1;
    if (len == 0 || i + 1 + len > size) break;
    if ((rec[0] & 1) == 0) {
      if (on_header((char *)rec + 1, 1, len - 1, &mem) != len - 1) abort();
    } else {
      size_t got = on_body((char *)rec + 1, 1, len - 1, &mem);
      if (got != len - 1 && !mem.too_large) abort();
      if (mem.body_len > mem.max_body) abort();
      got = on_body((char *)rec + 1, 1, len - 1, &file);
      if (got != len - 1 && !file.too_large) abort();
    }
    i += 1 + len;
  }
  for (size_t h = 0; h < mem.nresp; h++)
    for (const char *p = mem.resp[h].name; *p; p++)
      if (*p >= 'A' && *p <= 'Z') abort();  /* names are lower-cased */
  clear_headers(&mem);
  free(mem.resp);
  free(mem.body);
  if (file.out) fclose(file.out);
  return 0;
}
