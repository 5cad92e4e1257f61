// libseccomp (Debian libseccomp-dev) for Swift. SCMP_ACT_ERRNO and SCMP_ACT_TRACE are
// function-like macros, which Swift does not import; these wrappers are all there is.
#include <seccomp.h>

static inline uint32_t supervisor_scmp_act_errno(uint16_t number) { return SCMP_ACT_ERRNO(number); }

static inline uint32_t supervisor_scmp_act_trace(uint16_t number) { return SCMP_ACT_TRACE(number); }
