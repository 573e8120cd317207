from audio_transfer.cli.main import main

raise SystemExit(main())
