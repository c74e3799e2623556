/*
 * args — prints its arguments and environment, one per line, for testing how
 * a runner hands them over.
 *
 *   args [ARG...]      prints "argv[i]=ARG" for each argv, then "env=NAME=VALUE"
 */
#include <stdio.h>

extern char **environ;

int main(int argc, char **argv) {
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
  for (char **e = environ; *e != NULL; e++) printf("env=%s\n", *e);
  return 0;
}
