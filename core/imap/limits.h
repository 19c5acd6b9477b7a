// Resource limits shared by the IMAP framer and parsers. Every buffer the codec
// keeps is bounded by one of these, so a hostile peer cannot make it grow
// freely.
#ifndef PIMAP_CORE_IMAP_LIMITS_H_
#define PIMAP_CORE_IMAP_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace pimap::imap {

struct ParserLimits {
  size_t max_line_bytes = 64 * 1024;  // one line, CRLF excluded
  uint64_t max_literal_bytes = 64ull << 20;
  int max_depth = 32;  // parenthesis nesting
};

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_LIMITS_H_
