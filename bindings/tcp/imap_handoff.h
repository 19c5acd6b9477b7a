// What travels with a device connection handed over to the shard that owns its
// user (the TLS session, input read but not parsed, the login to finish), and
// its arrival there as an ImapConnection.
#ifndef PIMAP_BINDINGS_TCP_IMAP_HANDOFF_H_
#define PIMAP_BINDINGS_TCP_IMAP_HANDOFF_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "bindings/tcp/imap_connection.h"
#include "core/engine/handoff.h"

namespace pimap::tcp {

// Takes `ssl` (may be null: a plain connection). `login_deadline_ms`: the
// connection's login deadline, which the hand-over does not extend.
std::unique_ptr<engine::Handoff> MakeImapHandoff(SSL* ssl, std::string input,
                                                 PendingLogin login,
                                                 int64_t login_deadline_ms);

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_IMAP_HANDOFF_H_
