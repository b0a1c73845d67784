from videostyle.cli import main

raise SystemExit(main())
