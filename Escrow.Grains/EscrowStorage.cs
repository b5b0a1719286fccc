namespace Escrow.Grains;

public static class EscrowStorage
{
    /// <summary>The one grain storage provider; each grain type has its own state name (pitfall P1).</summary>
    public const string ProviderName = "escrow-store";
}
