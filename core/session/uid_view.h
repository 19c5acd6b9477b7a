// UidView: a device's view of one folder — the ordered set of UIDs the device
// knows — from which message sequence numbers are rendered (MSN = 1-based
// position in ascending UID order). The gateway talks UIDs to the store and
// renders MSNs per device from this view, which is what makes per-device view
// filters and exact replay after a disconnect possible (architecture.md §3).
//
// Representation: maximal UID ranges (sorted, disjoint, never adjacent),
// grouped into chunks of at most kChunkMax ranges. Each chunk keeps running
// counts of its ranges, and a Fenwick tree over chunk counts gives the number
// of UIDs before any chunk. With R ranges, C = R / kChunkMax chunks and
// B = kChunkMax:
//   Contains, MsnOf        O(log R)
//   UidAt                  O(log R)
//   Insert/Erase at the end (UID above / equal to max_uid)   O(log C), usually
//                          O(1) (extend or shrink the last range)
//   Insert/Erase elsewhere O(B + log R); a chunk split or an emptied/merged
//                          chunk rebuilds the chunk index in O(C), at most
//                          once per ~B/2 structural changes of that chunk
//   Resolve                O(k log k + (k' + p) log R), k set ranges, k' of
//                          them disjoint after merging, p output pieces
//   Serialize / Parse      O(R)
// Memory: ~12 bytes per range (8 for the range, 4 for its running count) plus
// ~60 bytes per chunk; a contiguous folder of any size costs one range.
#ifndef PIMAP_CORE_SESSION_UID_VIEW_H_
#define PIMAP_CORE_SESSION_UID_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/sequence_set.h"

namespace pimap::session {

class UidView {
 public:
  UidView() = default;

  // Number of UIDs in the view (the EXISTS count the device knows).
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t range_count() const { return range_count_; }

  bool Contains(uint32_t uid) const;
  std::optional<uint32_t> MsnOf(uint32_t uid) const;
  std::optional<uint32_t> UidAt(uint32_t msn) const;

  // Adds a UID (any order). Returns its new MSN, or nullopt if it was present.
  // UID 0 is not a valid UID and is never added (nullopt).
  std::optional<uint32_t> Insert(uint32_t uid);
  // Removes a UID; returns the MSN it had (what "* n EXPUNGE" must say), or
  // nullopt if it was absent.
  std::optional<uint32_t> Erase(uint32_t uid);

  // Largest UID in the view; 0 when empty.
  uint32_t max_uid() const;

  // Resolves a device-side sequence set to the UIDs it names, as ascending,
  // disjoint, non-adjacent ranges. MSN mode: "*" is size(); numbers above
  // size() name nothing. UID mode: "*" is max_uid() and only UIDs present in
  // the view are returned. The saved result "$" (and any set on an empty view)
  // resolves to nothing: the caller keeps SEARCHRES results itself.
  // The set's ranges are merged first, so a set that repeats or overlaps
  // itself ("1:*,1:*,...") costs what its union costs: at most one walk over
  // the view per disjoint range. `steps` (optional) counts the view ranges
  // visited, for tests that hold that bound.
  std::vector<std::pair<uint32_t, uint32_t>> Resolve(
      const imap::SequenceSet& set, bool uid_mode,
      size_t* steps = nullptr) const;

  // All ranges, ascending (for checkpoints and tests).
  std::vector<std::pair<uint32_t, uint32_t>> Ranges() const;

  // Compact text form "1:5,7,9:12" ("" when empty). Parse accepts exactly this
  // canonical form: numbers 1..4294967295 without leading zeros, "a:b" with
  // a < b, ranges ascending, disjoint and non-adjacent. Anything else is
  // InvalidArgument, so a corrupt checkpoint is detected, never half-loaded.
  std::string Serialize() const;
  static absl::StatusOr<UidView> Parse(absl::string_view text);
  // Builds a view from ascending UIDs (duplicates and 0 are skipped; unsorted
  // input is sorted first).
  static UidView FromSortedUids(const std::vector<uint32_t>& uids);

  // Approximate heap + object bytes, for capacity planning.
  size_t MemoryBytes() const;

  // Ranges per chunk; a chunk that reaches it is split in two halves.
  static constexpr size_t kChunkMax = 128;

 private:
  struct Range {
    uint32_t first;
    uint32_t last;
  };
  struct Chunk {
    std::vector<Range> ranges;  // never empty
    // cum[i]: number of UIDs in ranges[0..i]. Lets a chunk answer "how many
    // UIDs before range i" and "which range holds the k-th UID" by binary
    // search.
    std::vector<uint32_t> cum;
    uint32_t count() const { return cum.back(); }
    uint32_t before(size_t i) const { return i == 0 ? 0 : cum[i - 1]; }
  };
  struct Pos {
    size_t chunk;
    size_t range;
  };

  // Builds from canonical ranges, filling chunks to 3/4 so that the first
  // middle inserts do not split at once.
  static UidView FromRanges(const std::vector<Range>& ranges);

  // Chunk whose first range starts at or below uid; nullopt if uid is below
  // every range.
  std::optional<size_t> ChunkFor(uint32_t uid) const;
  // Position of the last range starting at or below uid.
  std::optional<Pos> FloorRange(uint32_t uid) const;
  // Position of the first range ending at or above uid, nullopt if none.
  std::optional<Pos> CeilRange(uint32_t uid) const;
  bool Next(Pos* p) const;
  uint32_t CountBefore(const Pos& p) const;  // UIDs before range p

  // Recomputes chunk c's running counts from range `from` on, its index
  // entry, and pushes the count change into the Fenwick tree.
  void Refresh(size_t c, size_t from);
  // Splits an over-full chunk, removes an empty one, merges small neighbours;
  // rebuilds the chunk index if the chunk list changed.
  void Rebalance(size_t c);
  void RebuildIndex();

  // Fenwick tree over chunk counts (1-based internally).
  uint64_t PrefixChunks(size_t n) const;  // UIDs in chunks [0, n)
  void FenwickAdd(size_t c, int64_t delta);
  void FenwickPush(uint32_t value);

  std::vector<Chunk> chunks_;
  std::vector<uint32_t> chunk_first_;  // chunks_[i].ranges.front().first
  std::vector<uint32_t> fenwick_;      // size chunks_.size() + 1
  size_t size_ = 0;
  size_t range_count_ = 0;
};

// Renders ascending UID ranges as an IMAP uid-set "1:5,9" (for UID
// FETCH/STORE/SEARCH sent upstream). Empty input gives "".
std::string RangesToSequenceSet(
    const std::vector<std::pair<uint32_t, uint32_t>>& ranges);

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_UID_VIEW_H_
