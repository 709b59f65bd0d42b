from gitops_glue.cli import main

main()
