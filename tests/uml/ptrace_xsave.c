/*
 * LD_PRELOAD wrapper for User-mode Linux (tests/uml/guest.py builds it).
 *
 * UML 6.1 restores a guest process's FPU state with
 * ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, iov) using its own fixed
 * XSAVE size (2,696 bytes). On hosts whose XSAVE area is larger (AVX-512,
 * AMX: ~11 KiB) the host kernel rejects any size but the full one, and UML
 * panics at the first guest process ("ptrace set fp regs failed, errno =
 * 14"). Here that one request is widened: the full area is read with
 * PTRACE_GETREGSET, UML's bytes are laid over its start (legacy area, XSAVE
 * header and the components UML knows), and the full size is written back.
 * Where the sizes match, nothing changes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Larger than any x86 XSAVE area so far (AMX: ~11 KiB). */
#define XSAVE_MAX (64 * 1024)

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

long ptrace(enum __ptrace_request request, ...)
{
    static ptrace_fn real;
    static __thread unsigned char full[XSAVE_MAX];
    va_list ap;
    pid_t pid;
    void *addr, *data;

    va_start(ap, request);
    pid = va_arg(ap, pid_t);
    addr = va_arg(ap, void *);
    data = va_arg(ap, void *);
    va_end(ap);
    if (!real)
        real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");

    if (request == PTRACE_SETREGSET && (unsigned long)addr == NT_X86_XSTATE && data) {
        struct iovec *iov = data;
        struct iovec whole = { full, sizeof(full) };

        if (real(PTRACE_GETREGSET, pid, addr, &whole) == 0 && whole.iov_len > iov->iov_len) {
            memcpy(full, iov->iov_base, iov->iov_len);
            return real(PTRACE_SETREGSET, pid, addr, &whole);
        }
    }
    return real(request, pid, addr, data);
}
