namespace Escrow.Grains.Domain;

/// <summary>The machine names a refused command by its record; the shared <see cref="Rejection"/> knows only its wire name.</summary>
public static class RejectionOfCommand
{
    extension(Rejection)
    {
        public static Rejection NotAllowed(EscrowStatus status, EscrowCommand command) => Rejection.NotAllowed(status, command.Name);
    }
}
