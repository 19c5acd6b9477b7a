// What a shard knows of the store's namespaces (core/imap/namespaces.h), so
// that the session engine can tell a user's own folders, which its event
// sources cover (the watch's NOTIFY `personal`, the store's pushes), from
// shared and other users' folders, which they do not (a change there is
// another user's transaction): a device in one of those keeps its own store
// link and hears of changes over it. Learned from the shard's first store
// link that logs in (store/upstream_link.cc asks NAMESPACE once), then read
// on every coverage decision. One per shard, touched only on its thread.
//
// A store names the same namespaces for all its users (Dovecot can differ per
// user through userdb overrides: the first answer stands for the shard).
#ifndef PIMAP_CORE_SESSION_STORE_NAMESPACES_H_
#define PIMAP_CORE_SESSION_STORE_NAMESPACES_H_

#include <utility>

#include "absl/strings/string_view.h"
#include "core/imap/namespaces.h"

namespace pimap::session {

class StoreNamespaces {
 public:
  // No link has answered yet: the next one to log in asks.
  bool wanted() const { return !learned_; }
  void Learn(imap::Namespaces namespaces) {
    namespaces_ = std::move(namespaces);
    learned_ = true;
  }
  // The store has no NAMESPACE (or refused it): every folder is the user's.
  void LearnNone() { learned_ = true; }
  // Until learned, every folder counts as the user's own.
  bool IsPersonal(absl::string_view folder) const {
    return namespaces_.IsPersonal(folder);
  }

 private:
  imap::Namespaces namespaces_;
  bool learned_ = false;
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_STORE_NAMESPACES_H_
