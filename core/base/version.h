// The gateway's version, for --version and for its answer to ID (RFC 2971).
#ifndef PIMAP_CORE_BASE_VERSION_H_
#define PIMAP_CORE_BASE_VERSION_H_

namespace pimap {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace pimap

#endif  // PIMAP_CORE_BASE_VERSION_H_
