// The member key's value and the view's look-ups (cluster_view.h).
#include "core/cluster/cluster_view.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/cluster/rendezvous.h"

namespace pimap::cluster {

std::string FormatMemberValue(const Member& member) {
  std::string out = absl::StrCat("forward=", member.forward);
  if (!member.intake.empty()) absl::StrAppend(&out, " intake=", member.intake);
  return out;
}

bool ParseMemberValue(absl::string_view id, absl::string_view value,
                      Member* member) {
  Member parsed;
  parsed.id = std::string(id);
  for (absl::string_view word : absl::StrSplit(value, ' ', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&word, "forward=")) {
      parsed.forward = std::string(word);
    } else if (absl::ConsumePrefix(&word, "intake=")) {
      parsed.intake = std::string(word);
    }
  }
  if (parsed.id.empty() || parsed.forward.empty()) return false;
  *member = std::move(parsed);
  return true;
}

const Member* ClusterView::Preferred(absl::string_view user) const {
  const size_t i = RendezvousOwner(user, members.size(), [&](size_t k) {
    return absl::string_view(members[k].id);
  });
  return i < members.size() ? &members[i] : nullptr;
}

const Member* ClusterView::Find(absl::string_view id) const {
  for (const Member& m : members) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

}  // namespace pimap::cluster
