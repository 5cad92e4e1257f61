// Linux calls the Swift Glibc module does not import: prctl is variadic, pipe2 and
// memfd_create need _GNU_SOURCE. Thin wrappers only; no logic lives here.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int supervisor_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

static inline int supervisor_pipe_cloexec(int ends[2]) { return (int)syscall(SYS_pipe2, ends, O_CLOEXEC); }

static inline int supervisor_memfd(const char *name) {
    return (int)syscall(SYS_memfd_create, name, 0x0001U /* MFD_CLOEXEC */ | 0x0002U /* MFD_ALLOW_SEALING */);
}

// F_ADD_SEALS with F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE (linux/fcntl.h).
static inline int supervisor_seal_readonly(int fd) { return fcntl(fd, 1024 + 9, 0x0001 | 0x0002 | 0x0004 | 0x0008); }

static inline int supervisor_set_not_dumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

// unshare(CLONE_NEWNET): moves the calling thread alone into a network namespace of its own.
// The tests use it to check ports where no other process can take them.
static inline int supervisor_unshare_network(void) { return (int)syscall(SYS_unshare, 0x40000000 /* CLONE_NEWNET */); }

// The Landlock ABI version of the running kernel; negative (errno set) without Landlock.
static inline int supervisor_landlock_abi(void) { return (int)syscall(444 /* landlock_create_ruleset */, (void *)0, 0, 1U); }
