// zlib (gzip, deflate) and the brotli decoder, from Debian's zlib1g-dev and libbrotli-dev.
#include <zlib.h>
#include <brotli/decode.h>
