namespace Escrow.Grains;

public static class EscrowStorage
{
    /// <summary>The one grain storage provider; each grain type has its own state name (pitfall P1).</summary>
    public const string ProviderName = "escrow-store";

    /// <summary>
    /// Writes <paramref name="next"/>. When the write fails (or its answer is lost) what is stored is unknown: memory
    /// goes back to the last known state and the activation goes, so the next call reads what is really stored; a
    /// grant or a listing that was not stored was not given.
    /// </summary>
    public static async Task WriteOrForgetAsync<T>(this IPersistentState<T> state, T next, Grain grain)
    {
        var before = state.State;
        state.State = next;
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            state.State = before;
            grain.DeactivateOnIdle();
            throw;
        }
    }
}
