// IMAP sequence sets ("1:3,5,7:*", RFC 3501 sequence-set) and the SEARCHRES
// saved-result marker "$" (RFC 5182).
#ifndef PIMAP_CORE_IMAP_SEQUENCE_SET_H_
#define PIMAP_CORE_IMAP_SEQUENCE_SET_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::imap {

// "*" (the largest number in use). It is resolved only when the set is
// evaluated (Contains), because its value changes as the mailbox changes.
inline constexpr uint32_t kStar = std::numeric_limits<uint32_t>::max();

struct SeqRange {
  // first <= last as numbers; "*" is kStar, so "*:4" is stored as {4, kStar}
  // and means 4..star_value (or star_value..4 if star_value < 4).
  uint32_t first = 0;
  uint32_t last = 0;
  bool operator==(const SeqRange&) const = default;
};

class SequenceSet {
 public:
  SequenceSet() = default;
  // Accepts "$" or 1*(number / "*" / range) separated by ",". Numbers are
  // 1..4294967294 (4294967295 would be indistinguishable from "*").
  static absl::StatusOr<SequenceSet> Parse(absl::string_view text);

  const std::vector<SeqRange>& ranges() const { return ranges_; }
  bool is_saved_result() const { return saved_result_; }
  // Whether `n` is in the set, with "*" standing for `star_value`. Always
  // false for "$" (the caller resolves the saved result).
  bool Contains(uint32_t n, uint32_t star_value) const;
  std::string ToString() const;

 private:
  std::vector<SeqRange> ranges_;
  bool saved_result_ = false;
};

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_SEQUENCE_SET_H_
