/* clock.c -- the monotonic clock, in milliseconds and microseconds */
#include <time.h>

#include "presence/times.h"

int64_t pi_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pi_mono_ms(void)
{
    return pi_mono_us() / 1000;
}
