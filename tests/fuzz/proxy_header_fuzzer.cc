// libFuzzer target: the PROXY protocol header (core/base/proxy_header), read
// from a load balancer before anything else on a connection. Invariants: a
// complete header is never longer than the input or the bound, and reads the
// same from exactly its own bytes; "need more" is said only below the bound.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/proxy_header.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  pimap::ProxyHeader header;
  std::string error;
  const pimap::ProxyParse result =
      pimap::ParseProxyHeader(input, &header, &error);
  if (result == pimap::ProxyParse::kNeedMore) {
    FUZZ_CHECK(size < pimap::kMaxProxyHeaderBytes);
  } else if (result == pimap::ProxyParse::kInvalid) {
    FUZZ_CHECK(!error.empty());
  } else {
    FUZZ_CHECK(header.length > 0 && header.length <= size);
    FUZZ_CHECK(header.length <= pimap::kMaxProxyHeaderBytes);
    pimap::ProxyHeader again;
    FUZZ_CHECK(pimap::ParseProxyHeader(input.substr(0, header.length), &again,
                                       &error) == pimap::ProxyParse::kComplete);
    FUZZ_CHECK(again.length == header.length);
    FUZZ_CHECK(again.has_address == header.has_address);
    FUZZ_CHECK(again.source == header.source);
  }
  return 0;
}
