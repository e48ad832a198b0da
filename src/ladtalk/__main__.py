from ladtalk.cli import main

raise SystemExit(main())
