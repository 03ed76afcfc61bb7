from subdivide.cli.main import main

raise SystemExit(main())
