/* err.c -- the one-line error buffer */
#include "presence/err.h"

#include <stdarg.h>
#include <stdio.h>

void pi_err_clear(pi_err *err)
{
    err->code = PI_OK;
    err->msg[0] = '\0';
}

int pi_err_set(pi_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    for (char *p = err->msg; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    err->code = code;
    return code;
}

const char *pi_err_code_name(int code)
{
    switch (code) {
    case PI_OK:
        return "ok";
    case PI_EINVAL:
        return "invalid";
    case PI_ERETRY:
        return "retry";
    case PI_EFATAL:
        return "fatal";
    case PI_EDATA:
        return "data";
    case PI_ESCHEMA:
        return "schema";
    case PI_EBEHIND:
        return "behind";
    default:
        return "unknown";
    }
}
