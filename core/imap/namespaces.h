// The store's namespaces (RFC 2342, NAMESPACE): which mailbox names are the
// user's own (personal) and which belong to other users or are shared. The
// gateway's event sources only see a user's own folders: NOTIFY's `personal`
// filter (RFC 5465) and the store's pushes (a change in a shared folder is
// another user's transaction), so a folder elsewhere must be watched over a
// device's own store connection. Parsed from one "* NAMESPACE" response.
#ifndef PIMAP_CORE_IMAP_NAMESPACES_H_
#define PIMAP_CORE_IMAP_NAMESPACES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/imap/response.h"

namespace pimap::imap {

struct Namespace {
  std::string prefix;     // e.g. "", "INBOX.", "Public.", "shared/"
  std::string delimiter;  // hierarchy delimiter ("" for NIL: a flat namespace)
};

class Namespaces {
 public:
  // At most this many namespaces per class are read (a store lists a handful).
  static constexpr size_t kMaxPerClass = 32;

  // "* NAMESPACE personal other-users shared", each NIL or a list of
  // ("prefix" "delimiter" [extensions]). InvalidArgument otherwise.
  static absl::StatusOr<Namespaces> FromResponse(const Response& r);

  // Whether `mailbox` is in a personal namespace: INBOX always; otherwise the
  // namespace with the longest prefix `mailbox` starts with (or whose prefix
  // it is, without the trailing delimiter: the namespace's root) decides. A
  // name under no namespace counts as personal.
  bool IsPersonal(absl::string_view mailbox) const;
  // Whether every name is personal (no other-users or shared namespace).
  bool all_personal() const { return others_.empty(); }

  const std::vector<Namespace>& personal() const { return personal_; }
  // Other users' and shared namespaces together.
  const std::vector<Namespace>& others() const { return others_; }

 private:
  std::vector<Namespace> personal_;
  std::vector<Namespace> others_;
};

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_NAMESPACES_H_
