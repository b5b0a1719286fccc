namespace Escrow.Grains;

/// <summary>
/// A failure of the cluster or the database that passes by itself (a silo that just died, a call that timed out, a
/// lost connection): the same work, tried again, can succeed. Every write path is idempotent, so such a failure is
/// retried, never reported as a bug.
/// </summary>
public static class TransientFailure
{
    public static bool Is(Exception e) => e switch
    {
        TimeoutException or OrleansException or Npgsql.NpgsqlException or OperationCanceledException { InnerException: TimeoutException } => true,
        AggregateException { InnerExceptions.Count: 1 } a => Is(a.InnerExceptions[0]),
        _ => false,
    };
}
