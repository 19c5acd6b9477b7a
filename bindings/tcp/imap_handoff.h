// What travels with a device connection handed over to the shard that owns its
// user (the TLS session, input read but not parsed, the login to finish), and
// its arrival there as an ImapConnection.
#ifndef PIMAP_BINDINGS_TCP_IMAP_HANDOFF_H_
#define PIMAP_BINDINGS_TCP_IMAP_HANDOFF_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "bindings/tcp/imap_connection.h"
#include "core/engine/handoff.h"

namespace pimap::tcp {

// Takes `ssl` (may be null: a plain connection).
std::unique_ptr<engine::Handoff> MakeImapHandoff(SSL* ssl, std::string input,
                                                 PendingLogin login);

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_IMAP_HANDOFF_H_
