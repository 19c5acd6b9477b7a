// Tests for core/http/response.h.
#include "core/http/response.h"

#include "gtest/gtest.h"

namespace pimap::http {
namespace {

TEST(HttpResponseTest, WholeResponseCarriesLengthTypeAndClose) {
  EXPECT_EQ(WholeResponse(404, "", "text/plain", "no\n", true),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
}

TEST(HttpResponseTest, NoContentHasNoBodyOrLength) {
  EXPECT_EQ(WholeResponse(204, "X-A: b\r\n", "text/plain", "ignored", false),
            "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n");
}

TEST(HttpResponseTest, ChunksAreHexSizedAndEmptyDataWritesNothing) {
  std::string out;
  AppendChunk(&out, "");
  EXPECT_EQ(out, "");
  AppendChunk(&out, std::string(26, 'x'));
  EXPECT_EQ(out, "1a\r\n" + std::string(26, 'x') + "\r\n");
  EXPECT_EQ(kLastChunk, "0\r\n\r\n");
}

}  // namespace
}  // namespace pimap::http
