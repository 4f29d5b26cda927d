package service

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	roleName = regexp.MustCompile(`^[a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?$`)
)

// ListProjects returns the projects the caller may get, by name.
func (s *Service) ListProjects(ctx context.Context, p *Principal) ([]gatehouse.Project, error) {
	var all []gatehouse.Project
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		all, err = tx.ListProjects(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.filtered("projects")
	out := []gatehouse.Project{}
	for _, pr := range all {
		if s.Can(p, "projects", "get", pr.Name) {
			out = append(out, normalProject(pr))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GetProject returns a project; needs projects, get, <name>.
func (s *Service) GetProject(ctx context.Context, p *Principal, name string) (gatehouse.Project, error) {
	if err := s.authorize(p, "projects", "get", name); err != nil {
		return gatehouse.Project{}, err
	}
	var pr gatehouse.Project
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		pr, err = tx.GetProject(ctx, name)
		return err
	})
	return normalProject(pr), err
}

// CreateProject creates a project with its roles; needs projects, create,
// <name>, and projects, update, <name> too when it has roles. The roles'
// policies join the policy in force before the call returns.
func (s *Service) CreateProject(ctx context.Context, p *Principal, pr gatehouse.Project) (gatehouse.Project, error) {
	if !dnsLabel.MatchString(pr.Name) {
		return gatehouse.Project{}, gatehouse.Errorf(gatehouse.EINVALID, "project name must be a DNS label: 1-63 lowercase letters, digits and '-'")
	}
	if err := s.authorize(p, "projects", "create", pr.Name); err != nil {
		return gatehouse.Project{}, err
	}
	// A project's roles (their policies, their groups) are what
	// projects, update governs: a project created with roles is created
	// and edited, or projects, create alone would bind anyone, its
	// creator included, to a role of the new project.
	if len(pr.Roles) > 0 {
		if err := s.authorize(p, "projects", "update", pr.Name); err != nil {
			return gatehouse.Project{}, err
		}
	}
	pr = normalProject(pr)
	if _, err := projectLines(pr); err != nil {
		return gatehouse.Project{}, err
	}
	pr.CreatedAt = s.now().UTC()
	err := s.changePolicy(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if err := s.refuseEveryoneGroups(p, pr); err != nil {
			return err
		}
		if err := tx.CreateProject(ctx, pr); err != nil {
			if gatehouse.IsCode(err, gatehouse.ECONFLICT) {
				return gatehouse.Errorf(gatehouse.ECONFLICT, "project %q already exists", pr.Name)
			}
			return err
		}
		return tx.AppendEvents(ctx, []gatehouse.Event{s.event(p, gatehouse.EventProjectChanged, "projects", "create", pr.Name, "")})
	})
	if err != nil {
		return gatehouse.Project{}, err
	}
	return pr, nil
}

// UpdateProject replaces a project's description and roles; needs
// projects, update, <name>. Roles that are gone lose their tokens.
func (s *Service) UpdateProject(ctx context.Context, p *Principal, name string, pr gatehouse.Project) (gatehouse.Project, error) {
	if pr.Name == "" {
		pr.Name = name
	}
	if pr.Name != name {
		return gatehouse.Project{}, gatehouse.Errorf(gatehouse.EINVALID, "project name in the body (%q) differs from the path (%q)", pr.Name, name)
	}
	return s.editProject(ctx, p, name, func(old *gatehouse.Project) error {
		old.Description, old.Roles = pr.Description, pr.Roles
		return nil
	})
}

// SetProjectDescription changes only a project's description; needs
// projects, update, <name>.
func (s *Service) SetProjectDescription(ctx context.Context, p *Principal, name, description string) (gatehouse.Project, error) {
	return s.editProject(ctx, p, name, func(pr *gatehouse.Project) error {
		pr.Description = description
		return nil
	})
}

// PutProjectRole creates a role of a project (editing "") or replaces
// the role named editing, leaving the rest of the project as the store
// holds it at that moment (so that two people editing two roles at once
// both keep their change); needs projects, update, <project>. A role's
// name does not change.
func (s *Service) PutProjectRole(ctx context.Context, p *Principal, project, editing string, role gatehouse.ProjectRole) (gatehouse.Project, error) {
	if editing != "" && role.Name != editing {
		return gatehouse.Project{}, gatehouse.Errorf(gatehouse.EINVALID, "a role's name does not change (%q, not %q)", editing, role.Name)
	}
	return s.editProject(ctx, p, project, func(pr *gatehouse.Project) error {
		i := slices.IndexFunc(pr.Roles, func(x gatehouse.ProjectRole) bool { return x.Name == role.Name })
		switch {
		case editing == "" && i >= 0:
			return gatehouse.Errorf(gatehouse.ECONFLICT, "project %q already has a role %q", project, role.Name)
		case editing != "" && i < 0:
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "project %q has no role %q", project, editing)
		case i >= 0:
			pr.Roles[i] = role
		default:
			pr.Roles = append(pr.Roles, role)
		}
		return nil
	})
}

// DeleteProjectRole deletes one role of a project, and its tokens; needs
// projects, update, <project>.
func (s *Service) DeleteProjectRole(ctx context.Context, p *Principal, project, role string) (gatehouse.Project, error) {
	return s.editProject(ctx, p, project, func(pr *gatehouse.Project) error {
		i := slices.IndexFunc(pr.Roles, func(x gatehouse.ProjectRole) bool { return x.Name == role })
		if i < 0 {
			return gatehouse.Errorf(gatehouse.ENOTFOUND, "project %q has no role %q", project, role)
		}
		pr.Roles = slices.Delete(pr.Roles, i, i+1)
		return nil
	})
}

// editProject changes a project as the store holds it, in one
// transaction: edit gets the stored project (and may run more than once,
// as the transaction may, so it only changes what it is given); the
// result is checked like any project, written, and the tokens of roles
// it no longer has are revoked.
func (s *Service) editProject(ctx context.Context, p *Principal, name string, edit func(*gatehouse.Project) error) (gatehouse.Project, error) {
	if err := s.authorize(p, "projects", "update", name); err != nil {
		return gatehouse.Project{}, err
	}
	var out gatehouse.Project
	err := s.changePolicy(ctx, p, func(tx gatehouse.Tx, c *change) error {
		old, err := tx.GetProject(ctx, name)
		if err != nil {
			return err
		}
		pr := normalProject(old)
		pr.Roles = slices.Clone(pr.Roles)
		if err := edit(&pr); err != nil {
			return err
		}
		pr.Name, pr.CreatedAt = name, old.CreatedAt
		pr = normalProject(pr)
		if _, err := projectLines(pr); err != nil {
			return err
		}
		if err := s.refuseEveryoneGroups(p, pr); err != nil {
			return err
		}
		if err := tx.UpdateProject(ctx, pr); err != nil {
			return err
		}
		events := []gatehouse.Event{s.event(p, gatehouse.EventProjectChanged, "projects", "update", name, "")}
		for _, r := range old.Roles {
			if _, ok := pr.Role(r.Name); ok {
				continue
			}
			gone, err := s.revokeTx(ctx, tx, c, p, gatehouse.TokenFilter{Project: name, Role: r.Name, Kind: gatehouse.KindProject}, gatehouse.EventTokenRevoked, "role deleted")
			if err != nil {
				return err
			}
			events = append(events, gone...)
			dropped, err := s.dropTrustPoliciesTx(ctx, tx, c, p, func(tp gatehouse.TrustPolicy) bool { return tp.Project == name && tp.Role == r.Name },
				fmt.Sprintf("its role %q of project %q was deleted", r.Name, name))
			if err != nil {
				return err
			}
			events = append(events, dropped...)
		}
		out = pr
		return tx.AppendEvents(ctx, events)
	})
	if err != nil {
		return gatehouse.Project{}, err
	}
	return out, nil
}

// DeleteProject deletes an empty project and kills its role tokens.
func (s *Service) DeleteProject(ctx context.Context, p *Principal, name string) error {
	if err := s.authorize(p, "projects", "delete", name); err != nil {
		return err
	}
	return s.changePolicy(ctx, p, func(tx gatehouse.Tx, c *change) error {
		if _, err := tx.GetProject(ctx, name); err != nil {
			return err
		}
		apps, err := tx.ListApplications(ctx, name)
		if err != nil {
			return err
		}
		if len(apps) > 0 {
			return gatehouse.Errorf(gatehouse.EPRECONDITION, "project %q still has %d application(s); delete or move them first", name, len(apps))
		}
		if err := tx.DeleteProject(ctx, name); err != nil {
			return err
		}
		events, err := s.revokeTx(ctx, tx, c, p, gatehouse.TokenFilter{Project: name, Kind: gatehouse.KindProject}, gatehouse.EventTokenRevoked, "project deleted")
		if err != nil {
			return err
		}
		dropped, err := s.dropTrustPoliciesTx(ctx, tx, c, p, func(tp gatehouse.TrustPolicy) bool { return tp.Project == name },
			fmt.Sprintf("its project %q was deleted", name))
		if err != nil {
			return err
		}
		events = append(events, dropped...)
		events = append(events, s.event(p, gatehouse.EventProjectChanged, "projects", "delete", name, ""))
		return tx.AppendEvents(ctx, events)
	})
}

// CreateRoleToken mints a project role token; needs projects, update, <p>.
func (s *Service) CreateRoleToken(ctx context.Context, p *Principal, project, role string, req gatehouse.TokenRequest) (gatehouse.NewToken, error) {
	if p.exchanged() {
		return gatehouse.NewToken{}, errExchangedMint
	}
	if err := s.authorize(p, "projects", "update", project); err != nil {
		return gatehouse.NewToken{}, err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		name = strings.TrimSpace(req.ID)
	}
	if name == "" {
		name = role
	}
	if len(name) > 100 {
		return gatehouse.NewToken{}, gatehouse.Errorf(gatehouse.EINVALID, "name must be at most 100 characters")
	}
	if len(req.Scopes) > 0 {
		return gatehouse.NewToken{}, gatehouse.Errorf(gatehouse.EINVALID, "project role tokens carry their role's policies; scopes are not accepted")
	}
	if req.SelfRotate {
		return gatehouse.NewToken{}, gatehouse.Errorf(gatehouse.EINVALID, "selfRotate is for API tokens; a project role token is rotated by minting a new one")
	}
	exp, err := s.expiry(s.now(), req.ExpiresIn)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	idle, err := s.idleTimeoutFor(req.IdleTimeout)
	if err != nil {
		return gatehouse.NewToken{}, err
	}
	return s.mint(ctx, p, gatehouse.Token{Name: name, Kind: gatehouse.KindProject, Project: project, Role: role, ExpiresAt: exp, IdleTimeout: idle},
		func(tx gatehouse.Tx) error { return roleExistsTx(ctx, tx, project, role) })
}

// ListRoleTokens lists a role's tokens; needs projects, get, <p>.
func (s *Service) ListRoleTokens(ctx context.Context, p *Principal, project, role string) ([]gatehouse.Token, error) {
	if err := s.authorize(p, "projects", "get", project); err != nil {
		return nil, err
	}
	if err := s.roleExists(ctx, project, role); err != nil {
		return nil, err
	}
	var out []gatehouse.Token
	err := s.store.View(ctx, func(tx gatehouse.Tx) error {
		var err error
		out, err = tx.ListTokens(ctx, gatehouse.TokenFilter{Project: project, Role: role, Kind: gatehouse.KindProject})
		return err
	})
	return publicTokens(out), err
}

// DeleteRoleToken revokes one role token; needs projects, update, <p>.
func (s *Service) DeleteRoleToken(ctx context.Context, p *Principal, project, role, id string) error {
	if err := s.authorize(p, "projects", "update", project); err != nil {
		return err
	}
	gone, err := s.revoke(ctx, p, gatehouse.TokenFilter{ID: id, Project: project, Role: role, Kind: gatehouse.KindProject}, gatehouse.EventTokenRevoked, "")
	if err != nil {
		return err
	}
	if len(gone) == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "token not found")
	}
	return nil
}

func (s *Service) roleExists(ctx context.Context, project, role string) error {
	return s.store.View(ctx, func(tx gatehouse.Tx) error { return roleExistsTx(ctx, tx, project, role) })
}

func roleExistsTx(ctx context.Context, tx gatehouse.Tx, project, role string) error {
	pr, err := tx.GetProject(ctx, project)
	if err != nil {
		return err
	}
	if _, ok := pr.Role(role); !ok {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "project %q has no role %q", project, role)
	}
	return nil
}

// changePolicy runs fn in a write for p that rebuilds the policy engine
// from the transaction's view before it commits.
func (s *Service) changePolicy(ctx context.Context, p *Principal, fn func(tx gatehouse.Tx, c *change) error) error {
	return s.write(ctx, p, func(tx gatehouse.Tx, c *change) error {
		c.policy = true
		return fn(tx, c)
	})
}

// projectLines validates a project's roles and returns the policy lines
// they contribute: each role's own lines, the implicit
// "p, proj:<p>:<r>, projects, get, <p>" and a g line per bound group.
func projectLines(pr gatehouse.Project) ([]policy.Line, error) {
	if len(pr.Description) > maxDescription {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "description is at most %d bytes", maxDescription)
	}
	if len(pr.Roles) > 100 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "a project has at most 100 roles")
	}
	var out []policy.Line
	seen := map[string]bool{}
	for _, r := range pr.Roles {
		if len(r.Description) > maxDescription {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "role %q: description is at most %d bytes", clipName(r.Name), maxDescription)
		}
		if len(r.Policies) > 1000 || len(r.Groups) > 1000 {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "role %q: at most 1000 policies and 1000 groups", clipName(r.Name))
		}
		if !roleName.MatchString(r.Name) {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "role name %q: letters, digits, '-' and '_', starting and ending with a letter or digit", r.Name)
		}
		if seen[r.Name] {
			return nil, gatehouse.Errorf(gatehouse.EINVALID, "role %q appears twice", r.Name)
		}
		seen[r.Name] = true
		subject := gatehouse.ProjectSubject(pr.Name, r.Name)
		for i, raw := range r.Policies {
			l, err := policy.ParseLine(raw)
			if err != nil {
				return nil, gatehouse.Errorf(gatehouse.EINVALID, "role %q policy %d (%q): %v", r.Name, i+1, raw, err)
			}
			if err := checkRoleLine(pr.Name, subject, l); err != nil {
				return nil, gatehouse.Errorf(gatehouse.EINVALID, "role %q policy %d (%q): %v", r.Name, i+1, raw, err)
			}
			out = append(out, l)
		}
		out = append(out, policy.Line{Type: "p", Subject: subject, Resource: "projects", Action: "get", Object: pr.Name, Effect: policy.Allow})
		for _, g := range r.Groups {
			if err := checkGroupName(g); err != nil {
				return nil, gatehouse.Errorf(gatehouse.EINVALID, "role %q: %s", r.Name, gatehouse.ErrorMessage(err))
			}
			out = append(out, policy.Line{Type: "g", Subject: g, Role: subject})
		}
	}
	return out, nil
}

// refuseEveryoneGroups refuses a project role bound to the default role
// or to a role the default role reaches: every account holds those, so the
// binding would hand the project role to everyone, which is a grant for
// the RBAC policy to make, not a project's. It runs in p's write, on the
// engine that write decided on (engineFor): on a follower, the policy the
// transaction reads, which may have a default role this replica's engine
// has not applied yet.
func (s *Service) refuseEveryoneGroups(p *Principal, pr gatehouse.Project) error {
	everyone := s.engineFor(p).Roles("", nil)
	for _, r := range pr.Roles {
		for _, g := range r.Groups {
			if slices.Contains(everyone, g) {
				return gatehouse.Errorf(gatehouse.EINVALID, "role %q: group %q is the default role (or one it reaches), which every account holds; binding it would give this role to everyone", r.Name, g)
			}
		}
	}
	return nil
}

// maxDescription bounds free-text descriptions.
const maxDescription = 4096

// clipName shortens a name that failed validation for an error message.
func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func checkRoleLine(project, subject string, l policy.Line) error {
	switch {
	case l.Type != "p":
		return fmt.Errorf("only p lines are allowed in a project role")
	case l.Subject != subject:
		return fmt.Errorf("subject must be %s", subject)
	case l.Resource != "applications":
		return fmt.Errorf("resource must be applications")
	case !strings.HasPrefix(l.Object, project+"/") || len(l.Object) == len(project)+1:
		return fmt.Errorf("object must lie under %s/", project)
	}
	return nil
}

func normalProject(pr gatehouse.Project) gatehouse.Project {
	if pr.Roles == nil {
		pr.Roles = []gatehouse.ProjectRole{}
	}
	roles := make([]gatehouse.ProjectRole, len(pr.Roles))
	for i, r := range pr.Roles {
		if r.Policies == nil {
			r.Policies = []string{}
		}
		if r.Groups == nil {
			r.Groups = []string{}
		}
		roles[i] = r
	}
	pr.Roles = roles
	return pr
}
