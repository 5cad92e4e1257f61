// Linux calls the Swift Glibc module does not import: prctl is variadic and pipe2 needs
// _GNU_SOURCE. Thin wrappers only; no logic lives here.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int supervisor_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

static inline int supervisor_pipe_cloexec(int ends[2]) { return (int)syscall(SYS_pipe2, ends, O_CLOEXEC); }
