/* pi_metrics_dump.c -- print a fresh exposition: the names the service
 * exports, for tests that check dashboards and alerts against them */
#include <stdio.h>

#include "presence/metrics.h"

int main(void)
{
    pi_metrics *m;

    pi_metrics_new(&m, "dump", 1000);
    pi_metrics_write(m, stdout);
    pi_metrics_destroy(m);
    return 0;
}
