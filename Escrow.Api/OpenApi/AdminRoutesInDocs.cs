using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Escrow.Api.OpenApi;

/// <summary>
/// The API documents are public; the operators' routes (and their tag) are listed in them only when
/// <c>Api:DocumentAdminRoutes</c> is true, so an anonymous reader does not get a map of what an admin key can do.
/// </summary>
public static class AdminRoutesInDocs
{
    public const string Setting = "Api:DocumentAdminRoutes";

    private const string AdminTag = "Admin";

    public static IServiceCollection HideAdminRoutesFromOpenApi(this IServiceCollection services, IConfiguration configuration)
    {
        if (configuration.GetValue(Setting, false))
        {
            return services;
        }
        return services.Configure<OpenApiOptions>("v1", o =>
        {
            var included = o.ShouldInclude;
            o.ShouldInclude = d => included(d) && !IsAdmin(d.RelativePath);
            o.AddDocumentTransformer((document, _, _) =>
            {
                if (document.Tags is { } tags)
                {
                    document.Tags = new HashSet<OpenApiTag>(tags.Where(t => t.Name != AdminTag));
                }
                return Task.CompletedTask;
            });
        });
    }

    public static bool IsAdmin(string? relativePath) =>
        relativePath is { } path && (path.StartsWith("v1/admin/", StringComparison.Ordinal) || path == "v1/admin");
}
