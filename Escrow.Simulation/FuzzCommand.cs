namespace Escrow.Simulation;

internal static class FuzzCommand
{
    public static Task<int> RunAsync(int inputs, int seed) => Task.FromResult(0);
}
