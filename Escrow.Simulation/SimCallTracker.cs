namespace Escrow.Simulation;

/// <summary>
/// Counts the grain calls running in the silo, one-way messages included. Settling is judged on stored states, but a
/// turn can still be under way when they stop changing (a one-way payouts-enabled, a self-drive, a call waiting on
/// another grain): the checker must not read its written state before the ledger sync that follows it.
/// </summary>
public sealed class SimCallTracker : IIncomingGrainCallFilter
{
    private static readonly TimeSpan WaitMax = TimeSpan.FromSeconds(60);
    private const int IdleReadingsNeeded = 3;
    private int _running;

    public int Running => Volatile.Read(ref _running);

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        Interlocked.Increment(ref _running);
        try
        {
            await context.Invoke();
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    /// <summary>
    /// Returns once no call has run for a few readings a few milliseconds apart (a one-way message sent by a call that
    /// just ended starts in that time), or after a minute of real time, so a call that never ends cannot hang the run.
    /// </summary>
    public async Task WhenIdleAsync()
    {
        var waited = Stopwatch.StartNew();
        var idle = 0;
        while (idle < IdleReadingsNeeded && waited.Elapsed < WaitMax)
        {
            idle = Running == 0 ? idle + 1 : 0;
            await Task.Delay(TimeSpan.FromMilliseconds(5));
        }
    }
}
