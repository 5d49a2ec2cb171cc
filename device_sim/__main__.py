from device_sim.cli import main

main()
