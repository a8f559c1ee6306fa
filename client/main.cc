// tokensampler: the command-line client of the tokensampler service.
#include "client/cli.h"

int main(int argc, char** argv) { return tokensampler::client::RunCli(argc, argv); }
