"""Robot-side definitions shared by the simulated Franka cell and the hardware bridges."""
