/* One function per subcommand; main.c dispatches through its table. */
#ifndef CLI_COMMANDS_H
#define CLI_COMMANDS_H

int cmd_serve(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_meter(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
