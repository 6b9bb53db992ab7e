from explainbench.bench.cli import main

main()
