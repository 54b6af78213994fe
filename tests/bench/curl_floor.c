/* curl_floor.c: the start-up floor `make bench` measures the host against.
 * It links libcurl (and so its ~30 shared libraries) and initialises it,
 * as the C core does, and nothing else. */
#include <curl/curl.h>

int main(void) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  curl_global_cleanup();
  return 0;
}
