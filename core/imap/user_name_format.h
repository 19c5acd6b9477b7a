// The store's rule for user names, mirrored by the gateway
// (--user-name-format): a subset of Dovecot's auth_username_format, so that the
// name the gateway keys a user by (owner shard, sessions, auth cache, store
// login, store pushes) is the name the store itself uses after login. Without
// it, "Alice" and "alice", or "alice@example.org" and "alice" on a store that
// strips the domain, would be two users on two shards, and the store's pushes,
// which name the store's canonical user, would miss one of them.
#ifndef PIMAP_CORE_IMAP_USER_NAME_FORMAT_H_
#define PIMAP_CORE_IMAP_USER_NAME_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pimap::imap {

class UserNameFormat {
 public:
  // "%Lu": the whole name in ASCII lower case, Dovecot's default rule (and
  // pimapd's default).
  UserNameFormat();
  // The grammar (Dovecot's variables and case modifiers):
  //   %u  %{user}      the whole name
  //   %n  %{username}  the part before the first '@' (the whole name if none)
  //   %d  %{domain}    the part after the first '@' (empty if none)
  //   %L / %U before a variable: ASCII lower / upper case, e.g. %Lu, %L{user}
  //   %%  a '%'; any other character is copied.
  // At least one %u or %n must appear (else every user would be one), and at
  // most 16 variables; anything else is InvalidArgument naming the position.
  static absl::StatusOr<UserNameFormat> Parse(absl::string_view spec);

  // The canonical name of `user`, or InvalidArgument when the rule leaves it
  // empty (e.g. %n of "@example.org"): such a login is refused.
  absl::StatusOr<std::string> Apply(absl::string_view user) const;

  // The spec it was parsed from ("%Lu" by default).
  const std::string& spec() const { return spec_; }
  // True when Apply never changes a name ("%u"): callers may skip it.
  bool identity() const;

 private:
  enum class Var : uint8_t { kLiteral, kUser, kUserName, kDomain };
  enum class Case : uint8_t { kKeep, kLower, kUpper };
  struct Piece {
    Var var = Var::kLiteral;
    Case letter_case = Case::kKeep;
    std::string literal;  // kLiteral only
  };

  std::string spec_;
  std::vector<Piece> pieces_;
};

}  // namespace pimap::imap

#endif  // PIMAP_CORE_IMAP_USER_NAME_FORMAT_H_
